//! Deploying to live NATS servers (issue 10): pushing account JWTs to the
//! full (nats-based) resolver of an operator's servers, and reading back
//! what they hold.
//!
//! The async runtime lives only here: each [`Session`] owns a
//! current-thread tokio runtime and one `async-nats` connection; its
//! methods are blocking. Every wait is bounded ([`Target`]'s timeouts),
//! every reply is parsed defensively ([`wire`]), and nothing secret is
//! written or printed (the minted user lives in memory only, [`auth`]).
//!
//! The subjects (`../shared/nats-jwt-facts.md` §11):
//! `$SYS.REQ.SERVER.PING` counts the servers; `$SYS.REQ.CLAIMS.LIST` says
//! which accounts each server holds (and which servers run a nats-based
//! resolver at all: memory resolvers do not answer it);
//! `$SYS.REQ.ACCOUNT.<pub>.CLAIMS.LOOKUP` returns an account's JWT (every
//! server answers, the reply does not name it; 2.9.10 never answers a
//! miss); `$SYS.REQ.CLAIMS.UPDATE` and `…DELETE` change them. Requests are
//! sent without headers (2.9.10 refuses them).

pub mod auth;
pub mod report;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;

use crate::live::{LiveState, ServerHolding};
use crate::manifest::model::Operator;
use crate::workspace::Workspace;

pub use auth::Credentials;
pub use report::{AccountResult, PushOutcome, Request};
use wire::ServerId;

/// Default wait for a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for the replies to one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times `$SYS.REQ.CLAIMS.LIST` is sent while a server that
/// answered PING has not answered it.
const LIST_ATTEMPTS: usize = 2;
/// How often a request without enough replies is sent again.
const MAX_ATTEMPTS: u32 = 4;
/// The first pause before a retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The most servers natsform counts (replies beyond are ignored).
const MAX_SERVERS: usize = 1000;
/// The most distinct accounts natsform reads back from one operator's servers.
pub const MAX_LIVE_ACCOUNTS: usize = 200_000;

/// Command-line choices about deploying.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--push URL…`: these servers instead of the manifest's.
    pub push: Vec<String>,
    /// `--no-push`: write the store only.
    pub no_push: bool,
    /// `--creds FILE`: connect as this user instead of a minted one.
    pub creds: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Where one operator's accounts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The operator's manifest name.
    pub operator: String,
    pub urls: Vec<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How many servers must acknowledge; `None`: every server that
    /// answers `$SYS.REQ.SERVER.PING`.
    pub acks: Option<usize>,
}

/// The operators to deploy and where: every operator with `resolver.urls`
/// (or, with `--push`, the manifest's only operator). Empty with
/// `--no-push`.
pub fn targets(ws: &Workspace, ov: &Overrides) -> Result<Vec<Target>> {
    if ov.no_push {
        return Ok(Vec::new());
    }
    for url in &ov.push {
        if let Err(msg) = crate::manifest::check_resolver_url(url) {
            bail!(
                "--push {}: the URL {msg}\n  = help: write `nats://host:4222` or `tls://host:4222`",
                crate::safepath::escape_line(url)
            );
        }
    }
    let manifest = &ws.loaded.manifest;
    if !ov.push.is_empty() && manifest.operators.len() > 1 {
        bail!("--push names servers, but the manifest has {} operators and a server trusts one\n  = help: set `resolver.urls` on each operator instead", manifest.operators.len());
    }
    let project = ws
        .loaded
        .path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let mut out = Vec::new();
    for (name, op) in &manifest.operators {
        let resolver = op.resolver.clone().unwrap_or_default();
        let urls = if ov.push.is_empty() {
            resolver.urls.clone()
        } else {
            ov.push.clone()
        };
        if urls.is_empty() {
            continue;
        }
        let tls = resolver.tls.clone().unwrap_or_default();
        // Manifest paths: validated relative and inside; no link followed.
        let in_project = |key: &str, value: &Option<String>| -> Result<Option<PathBuf>> {
            let Some(value) = value else { return Ok(None) };
            if let Some(problem) = crate::safepath::project_dir_problem(value) {
                bail!("operators.{name}.resolver.tls.{key} {problem}");
            }
            let path = project.join(value);
            crate::safepath::check_no_links(&project, &path)
                .with_context(|| format!("operators.{name}.resolver.tls.{key}"))?;
            Ok(Some(path))
        };
        let ca = match &ov.tls_ca {
            Some(p) => Some(p.clone()),
            None => in_project("ca", &tls.ca)?,
        };
        let (cert, key) = match (&ov.tls_cert, &ov.tls_key) {
            (Some(c), Some(k)) => (Some(c.clone()), Some(k.clone())),
            (None, None) => (in_project("cert", &tls.cert)?, in_project("key", &tls.key)?),
            _ => bail!(
                "--tls-cert and --tls-key go together: give the client certificate and its key"
            ),
        };
        let nanos = |d: Option<crate::manifest::duration::Duration>, default: Duration| {
            d.map(|d| Duration::from_nanos(d.as_nanos().max(1) as u64))
                .unwrap_or(default)
        };
        out.push(Target {
            operator: name.clone(),
            urls,
            connect_timeout: nanos(resolver.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            request_timeout: nanos(resolver.request_timeout, DEFAULT_REQUEST_TIMEOUT),
            tls_ca: ca,
            tls_cert: cert,
            tls_key: key,
            acks: resolver.acks.map(|a| a as usize),
        });
    }
    if out.is_empty() && !ov.push.is_empty() {
        bail!("--push: the manifest declares no operator");
    }
    Ok(out)
}

/// The lock address of the key that signs the minted deploy user of
/// operator `name`; see [`auth::system_signer_address`].
pub fn system_signer_address(ws: &Workspace, name: &str) -> Result<String> {
    let op = operator(ws, name)?;
    auth::system_signer_address(name, op)
}

/// The system account's public key of operator `name`, from `book`.
pub fn system_account_key(
    ws: &Workspace,
    name: &str,
    book: &crate::plan::KeyBook,
) -> Option<String> {
    let op = operator(ws, name).ok()?;
    let sys = op.system_account.as_deref()?;
    let acc = op.accounts.get(sys)?;
    book.get(&crate::manifest::address::key(
        &crate::manifest::address::account(name, sys),
        &acc.key,
    ))
    .cloned()
}

fn operator<'a>(ws: &'a Workspace, name: &str) -> Result<&'a Operator> {
    ws.loaded
        .manifest
        .operators
        .get(name)
        .ok_or_else(|| anyhow!("operator {name} is not in the manifest"))
}

/// The real clock, for the minted user's validity (servers check it
/// against theirs; `NATSFORM_NOW` does not apply).
pub fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A reply to one request.
#[derive(Debug, Clone)]
enum Raw {
    Msg(bytes::Bytes),
    NoResponders,
}

/// One connection to one operator's servers.
pub struct Session {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    sub: async_nats::Subscriber,
    inbox: String,
    next_id: u64,
    pub target: Target,
    /// The servers that answered `$SYS.REQ.SERVER.PING`, by name.
    pub servers: BTreeMap<String, ServerId>,
    /// Of those, the servers that answered `$SYS.REQ.CLAIMS.LIST` (a
    /// nats-based resolver), with the accounts each holds.
    pub holdings: BTreeMap<String, Vec<String>>,
    /// Things worth telling the user (servers without a resolver, …).
    pub notes: Vec<String>,
    opened: std::time::Instant,
}

impl Session {
    /// Connects to `target` as `creds`, counts the servers (PING) and asks
    /// each what it holds (LIST).
    pub fn open(target: &Target, creds: Credentials) -> Result<Session> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the network runtime")?;
        let (client, sub, inbox) = rt.block_on(connect(target, creds))?;
        let mut s = Session {
            rt,
            client,
            sub,
            inbox,
            next_id: 0,
            target: target.clone(),
            servers: BTreeMap::new(),
            holdings: BTreeMap::new(),
            notes: Vec::new(),
            opened: std::time::Instant::now(),
        };
        s.ping()?;
        let distinct: BTreeSet<&String> = target.urls.iter().collect();
        if s.servers.len() < distinct.len() {
            s.notes.push(format!(
                "{} server{} answered $SYS.REQ.SERVER.PING ({}), and the URLs name {}: a server may be down or not in this cluster; what it lacks is pushed by a later apply (`plan --live` shows it)",
                s.servers.len(),
                if s.servers.len() == 1 { "" } else { "s" },
                s.servers.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
                distinct.len()
            ));
        }
        s.list()?;
        Ok(s)
    }

    /// Whether the session may still be used: connected, and opened less
    /// than a minute ago (a minted user is valid for two).
    pub fn is_fresh(&self) -> bool {
        self.opened.elapsed() < Duration::from_secs(60)
            && self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The name of the operator's servers, for messages.
    fn where_(&self) -> String {
        self.target
            .urls
            .iter()
            .map(|u| crate::safepath::escape_line(u).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn ping(&mut self) -> Result<()> {
        // Every server answers, the last perhaps well after the first on a
        // loaded machine: until as many have answered as the URLs name
        // (one server each, as a cluster's `resolver.urls` lists them),
        // each next reply is waited for up to the request timeout; then
        // until nothing arrives for a quarter of it (servers the URLs do
        // not name answer too).
        let idle = (self.target.request_timeout / 4).max(Duration::from_millis(100));
        let named: BTreeSet<&str> = self.target.urls.iter().map(String::as_str).collect();
        let replies = self.exchange(
            &[("$SYS.REQ.SERVER.PING".to_string(), bytes::Bytes::new())],
            Expect::AtLeast(named.len()),
            self.target.request_timeout,
            idle,
        )?;
        for raw in replies.into_iter().flatten() {
            if let Raw::Msg(m) = raw {
                if let Ok(id) = wire::ping_reply(&m) {
                    if self.servers.len() < MAX_SERVERS {
                        self.servers.insert(id.label().to_string(), id);
                    }
                }
            }
        }
        if self.servers.is_empty() {
            bail!(
                "no server at {} answered $SYS.REQ.SERVER.PING: the user natsform connected as is not a system-account user there, or the servers have no system account\n  = help: configure the server with this operator and `system_account` (see `natsform server-config`), or pass --creds with a system-account user",
                self.where_()
            );
        }
        Ok(())
    }

    /// Asks every server what it holds. A server that answered PING but
    /// not LIST is asked once more: a reply is lost when a route is
    /// replaced (a duplicate route closed, interest not yet re-sent), which
    /// happens on a healthy cluster too; a server without a nats-based
    /// resolver stays silent both times and costs one more timeout.
    fn list(&mut self) -> Result<()> {
        let expect = self.servers.len();
        for _attempt in 0..LIST_ATTEMPTS {
            let replies = self.exchange(
                &[("$SYS.REQ.CLAIMS.LIST".to_string(), bytes::Bytes::new())],
                Expect::Each(expect),
                self.target.request_timeout,
                self.target.request_timeout,
            )?;
            for raw in replies.into_iter().flatten() {
                if let Raw::Msg(m) = raw {
                    match wire::list_reply(&m) {
                        Ok((id, keys)) => {
                            self.holdings.insert(id.label().to_string(), keys);
                        }
                        Err(e) => {
                            // (the same bad reply again on the second attempt: one note)
                            let note = format!("ignored {e}");
                            if !self.notes.contains(&note) {
                                self.notes.push(note);
                            }
                        }
                    }
                }
            }
            if self.servers.keys().all(|s| self.holdings.contains_key(s)) {
                break;
            }
        }
        let without: Vec<&String> = self
            .servers
            .keys()
            .filter(|s| !self.holdings.contains_key(*s))
            .collect();
        if self.holdings.is_empty() {
            bail!(
                "the servers at {} ({}) run no nats-based resolver: none answered $SYS.REQ.CLAIMS.LIST. A memory resolver (`resolver: MEMORY`) accepts no pushes\n  = help: give the servers a full resolver (`resolver {{ type: full, dir: …, allow_delete: true }}`), e.g. with `natsform server-config`, or apply with --no-push",
                self.where_(),
                self.servers.keys().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        if !without.is_empty() {
            self.notes.push(format!(
                "server{} {} answered PING but not $SYS.REQ.CLAIMS.LIST: no nats-based resolver there (a memory resolver accepts no pushes; see `natsform server-config`)",
                if without.len() == 1 { "" } else { "s" },
                without.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    /// What every server holds: the LIST of each, and every listed
    /// account's JWT (LOOKUP). LOOKUP replies do not name their server:
    /// when the holders of an account agree (the usual case) each holds
    /// that JWT; when they disagree, each holder is shown the oldest
    /// version (so the plan pushes the store's again) and a note says so.
    pub fn read_live(&mut self, progress: &report::Progress) -> Result<LiveState> {
        let mut holders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (server, keys) in &self.holdings {
            for k in keys {
                holders.entry(k.as_str()).or_default().push(server.as_str());
            }
        }
        let keys: Vec<(String, usize)> = holders
            .iter()
            .map(|(k, h)| (k.to_string(), h.len()))
            .collect();
        if keys.len() > MAX_LIVE_ACCOUNTS {
            bail!(
                "the servers at {} list {} accounts, more than the {MAX_LIVE_ACCOUNTS} natsform reads",
                self.where_(),
                keys.len()
            );
        }
        progress.start(keys.len(), "reading accounts");
        let reqs: Vec<(String, bytes::Bytes)> = keys
            .iter()
            .map(|(k, _)| {
                (
                    format!("$SYS.REQ.ACCOUNT.{k}.CLAIMS.LOOKUP"),
                    bytes::Bytes::new(),
                )
            })
            .collect();
        let counts: Vec<usize> = keys.iter().map(|(_, n)| *n).collect();
        let replies = self.exchange_counted(&reqs, &counts, progress)?;
        progress.finish();
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for ((key, n), raws) in keys.iter().zip(replies) {
            let mut versions: Vec<String> = Vec::new();
            for raw in raws {
                let Raw::Msg(m) = raw else { continue };
                match wire::lookup_reply(&m, key) {
                    Ok(Some(jwt)) => versions.push(jwt),
                    Ok(None) => {}
                    Err(e) => self.notes.push(format!("account {key}: ignored {e}")),
                }
            }
            versions.sort();
            versions.dedup();
            if versions.is_empty() {
                self.notes.push(format!(
                    "account {key}: listed by {n} server(s) but no LOOKUP reply came within {:?}",
                    self.target.request_timeout
                ));
                continue;
            }
            if versions.len() > 1 {
                self.notes.push(format!("account {key}: the servers hold {} different versions (LOOKUP replies do not say which server holds which; the oldest is shown for each)", versions.len()));
                versions.sort_by_key(|j| {
                    crate::claims::peek(j)
                        .map(|d| d.claims.data().iat)
                        .unwrap_or(0)
                });
            }
            found.insert(key.clone(), versions.swap_remove(0));
        }
        let servers = self
            .holdings
            .iter()
            .map(|(name, keys)| ServerHolding {
                name: name.clone(),
                accounts: keys
                    .iter()
                    .filter_map(|k| found.get(k).map(|j| (k.clone(), j.clone())))
                    .collect(),
            })
            .collect();
        Ok(LiveState {
            operator: self.target.operator.clone(),
            servers,
        })
    }

    /// Sends `requests` (UPDATE with the account JWT, DELETE with the
    /// operator-signed request), pipelined, and collects every server's
    /// reply; sends again, with backoff, those that got fewer replies
    /// than needed (no responders, timeouts).
    pub fn push(&mut self, requests: Vec<Request>, progress: &report::Progress) -> PushOutcome {
        let needed = self.target.acks.unwrap_or(self.servers.len());
        let mut results: Vec<AccountResult> = requests.iter().map(AccountResult::new).collect();
        let mut pending: Vec<usize> = (0..requests.len())
            .filter(|i| results[*i].error.is_none())
            .collect();
        progress.start(pending.len(), "pushing accounts");
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..MAX_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                // The timer must be made inside the runtime (it panics outside).
                self.rt
                    .block_on(async { tokio::time::sleep(backoff).await });
                backoff *= 2;
            }
            let reqs: Vec<(String, bytes::Bytes)> = pending
                .iter()
                .map(|&i| {
                    let r = &requests[i];
                    (
                        r.subject().to_string(),
                        bytes::Bytes::from(r.payload.clone()),
                    )
                })
                .collect();
            let counts = vec![needed; reqs.len()];
            let replies = match self.exchange_counted(&reqs, &counts, progress) {
                Ok(r) => r,
                Err(e) => {
                    for &i in &pending {
                        results[i].error = Some(format!("{e:#}"));
                    }
                    break;
                }
            };
            let mut again = Vec::new();
            for (&i, raws) in pending.iter().zip(replies) {
                let r = &mut results[i];
                for raw in raws {
                    match raw {
                        Raw::NoResponders => r.no_responders = true,
                        Raw::Msg(m) => match wire::update_reply(&m) {
                            Ok(reply) => {
                                if reply.account.as_deref().is_some_and(|a| a != r.public) {
                                    continue; // a reply about another account: not ours
                                }
                                let name = reply.server.label().to_string();
                                match reply.outcome {
                                    Ok(_) => {
                                        r.rejected.remove(&name);
                                        r.acknowledged.insert(name);
                                    }
                                    Err(reason) => {
                                        if !r.acknowledged.contains(&name) {
                                            r.rejected.insert(name, reason);
                                        }
                                    }
                                }
                            }
                            Err(e) => r.ignored.push(e),
                        },
                    }
                }
                if r.rejected.is_empty() && r.acknowledged.len() < needed {
                    again.push(i);
                }
            }
            pending = again;
        }
        progress.finish();
        for r in &mut results {
            r.missing = self
                .servers
                .keys()
                .filter(|s| !r.acknowledged.contains(*s) && !r.rejected.contains_key(*s))
                .cloned()
                .collect();
        }
        PushOutcome {
            operator: self.target.operator.clone(),
            servers: self.servers.keys().cloned().collect(),
            without_resolver: self
                .servers
                .keys()
                .filter(|s| !self.holdings.contains_key(*s))
                .cloned()
                .collect(),
            needed,
            accounts: results,
        }
    }

    /// Sends each request once and collects replies until each request
    /// has `counts[i]` non-empty replies (or no responders), or nothing
    /// arrives for a request timeout.
    fn exchange_counted(
        &mut self,
        reqs: &[(String, bytes::Bytes)],
        counts: &[usize],
        progress: &report::Progress,
    ) -> Result<Vec<Vec<Raw>>> {
        let timeout = self.target.request_timeout;
        let servers = self.servers.len();
        let base = self.next_id;
        self.next_id += reqs.len() as u64;
        let inbox = self.inbox.clone();
        let client = self.client.clone();
        let sub = &mut self.sub;
        self.rt.block_on(async move {
            send_requests(&client, &inbox, base, reqs).await?;
            let n = reqs.len();
            let mut out: Vec<Vec<Raw>> = vec![Vec::new(); n];
            let mut have = vec![0usize; n];
            let mut done = counts.iter().filter(|c| **c == 0).count();
            // Every server may answer every request (newer servers answer a
            // LOOKUP miss too), twice over for stray replies; no more.
            let mut budget = n.saturating_mul(servers.max(1) * 2 + 2) + 16;
            while done < n && budget > 0 {
                let msg = match tokio::time::timeout(timeout, sub.next()).await {
                    Ok(Some(m)) => m,
                    _ => break,
                };
                budget -= 1;
                let Some(idx) = request_index(&msg.subject, &inbox, base, n) else {
                    continue;
                };
                if have[idx] >= counts[idx] {
                    continue;
                }
                if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    out[idx].push(Raw::NoResponders);
                    have[idx] = counts[idx];
                    done += 1;
                    continue;
                }
                if msg.payload.is_empty() {
                    continue; // a LOOKUP miss on newer servers
                }
                out[idx].push(Raw::Msg(msg.payload));
                have[idx] += 1;
                if have[idx] == counts[idx] {
                    done += 1;
                    progress.inc();
                }
            }
            Ok(out)
        })
    }

    /// Sends requests and collects replies, each waited for up to `first`:
    /// until [`Expect::Each`] replies each, or (`Expect::AtLeast`) after
    /// that many replies in all, until nothing arrives for `idle`.
    fn exchange(
        &mut self,
        reqs: &[(String, bytes::Bytes)],
        expect: Expect,
        first: Duration,
        idle: Duration,
    ) -> Result<Vec<Vec<Raw>>> {
        let (each, at_least) = match expect {
            Expect::Each(n) => (Some(n), 0),
            Expect::AtLeast(n) => (None, n),
        };
        let base = self.next_id;
        self.next_id += reqs.len() as u64;
        let inbox = self.inbox.clone();
        let client = self.client.clone();
        let sub = &mut self.sub;
        self.rt.block_on(async move {
            send_requests(&client, &inbox, base, reqs).await?;
            let n = reqs.len();
            let mut out: Vec<Vec<Raw>> = vec![Vec::new(); n];
            let mut total = 0usize;
            let mut replies = 0usize;
            let mut wait = first;
            loop {
                if let Some(e) = each {
                    if out.iter().all(|o| o.len() >= e) {
                        break;
                    }
                }
                if total >= n * MAX_SERVERS {
                    break;
                }
                let msg = match tokio::time::timeout(wait, sub.next()).await {
                    Ok(Some(m)) => m,
                    _ => break,
                };
                total += 1;
                let Some(idx) = request_index(&msg.subject, &inbox, base, n) else {
                    continue;
                };
                if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    out[idx].push(Raw::NoResponders);
                    if each.is_none() {
                        break;
                    }
                    continue;
                }
                out[idx].push(Raw::Msg(msg.payload));
                replies += 1;
                if each.is_none() && replies >= at_least {
                    wait = idle;
                }
            }
            Ok(out)
        })
    }
}

/// How many replies [`Session::exchange`] waits for.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This many to each request.
    Each(usize),
    /// This many in all, then whatever comes before a quiet gap.
    AtLeast(usize),
}

/// Publishes request `i` of `reqs` with the reply subject
/// `{inbox}.{base + i}`, then flushes.
async fn send_requests(
    client: &async_nats::Client,
    inbox: &str,
    base: u64,
    reqs: &[(String, bytes::Bytes)],
) -> Result<()> {
    for (i, (subject, payload)) in reqs.iter().enumerate() {
        client
            .publish_with_reply(
                subject.clone(),
                format!("{inbox}.{}", base + i as u64),
                payload.clone(),
            )
            .await
            .map_err(|e| anyhow!("sending {subject}: {e}"))?;
    }
    client
        .flush()
        .await
        .map_err(|e| anyhow!("sending requests: {e}"))
}

/// Which of `n` requests sent from `base` (see [`send_requests`]) a reply
/// on `subject` answers; `None` for a subject that is not one of them.
fn request_index(subject: &str, inbox: &str, base: u64, n: usize) -> Option<usize> {
    subject
        .strip_prefix(inbox)
        .and_then(|t| t.strip_prefix('.'))
        .and_then(|t| t.parse::<u64>().ok())
        .and_then(|id| id.checked_sub(base))
        .map(|i| i as usize)
        .filter(|i| *i < n)
}

impl Drop for Session {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.rt.block_on(async move {
            tokio::time::timeout(Duration::from_millis(500), client.drain()).await
        });
    }
}

/// Connects, with the target's TLS files and timeouts, as `creds`; no
/// reconnects (a session is short), no discovered servers (only the URLs
/// the operator chose).
async fn connect(
    target: &Target,
    creds: Credentials,
) -> Result<(async_nats::Client, async_nats::Subscriber, String)> {
    let key = std::sync::Arc::new(creds.key);
    let inbox = creds.inbox.clone();
    let mut opts = async_nats::ConnectOptions::with_jwt(creds.jwt, move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .name("natsform")
    .custom_inbox_prefix(inbox.clone())
    .connection_timeout(target.connect_timeout)
    .request_timeout(Some(target.request_timeout))
    .ignore_discovered_servers()
    .max_reconnects(Some(target.urls.len()))
    .reconnect_delay_callback(|_| Duration::from_millis(0))
    .subscription_capacity(65_536);
    let tls = target.tls_ca.is_some()
        || target.tls_cert.is_some()
        || target.urls.iter().any(|u| u.starts_with("tls://"));
    for (what, path) in [
        ("CA", &target.tls_ca),
        ("client certificate", &target.tls_cert),
        ("client key", &target.tls_key),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                bail!(
                    "the TLS {what} file {} does not exist or is not a file",
                    crate::safepath::escape_line(&p.display().to_string())
                );
            }
        }
    }
    if let Some(ca) = &target.tls_ca {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(c), Some(k)) = (&target.tls_cert, &target.tls_key) {
        opts = opts.add_client_certificate(c.clone(), k.clone());
    }
    if tls {
        opts = opts.require_tls(true);
    }
    let addrs: Vec<async_nats::ServerAddr> = target
        .urls
        .iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|_| anyhow!("{} is not a server URL", crate::safepath::escape_line(u)))
        })
        .collect::<Result<_>>()?;
    let shown = target
        .urls
        .iter()
        .map(|u| crate::safepath::escape_line(u).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let budget = target.connect_timeout * (target.urls.len() as u32 + 1);
    let client = match tokio::time::timeout(budget, opts.connect(addrs)).await {
        Err(_) => bail!(connect_help(&target.operator, &shown, "timed out", None)),
        Ok(Err(e)) => bail!(connect_help(
            &target.operator,
            &shown,
            &describe_connect_error(&e),
            Some(e.kind())
        )),
        Ok(Ok(c)) => c,
    };
    let sub = client
        .subscribe(format!("{inbox}.*"))
        .await
        .map_err(|e| anyhow!("subscribing to natsform's inbox on {shown}: {e}"))?;
    Ok((client, sub, inbox))
}

/// The error of a connection, with its cause (which never holds a secret:
/// TLS and I/O errors, or the server's `-ERR` text).
fn describe_connect_error(e: &async_nats::ConnectError) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        src = s.source();
    }
    crate::redact::redact_secrets(&crate::safepath::escape_line(&text)).into_owned()
}

fn connect_help(
    operator: &str,
    urls: &str,
    why: &str,
    kind: Option<async_nats::ConnectErrorKind>,
) -> String {
    use async_nats::ConnectErrorKind as K;
    // rustls reports a refused certificate as an I/O error of the handshake.
    let lower = why.to_lowercase();
    let tls = kind == Some(K::Tls)
        || lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake");
    let (why, kind) = if tls && kind != Some(K::Tls) {
        (
            format!(
                "TLS failure: {}",
                why.trim_start_matches("IO error: ")
                    .trim_start_matches("TLS error: ")
            ),
            Some(K::Tls),
        )
    } else {
        (why.to_string(), kind)
    };
    let help = match kind {
        Some(K::Tls) => "check the TLS files: `tls.ca` (or --tls-ca) must be the CA that signed the server's certificate, and the URL's host must be a name in that certificate".to_string(),
        Some(K::AuthorizationViolation) | Some(K::Authentication) => format!("the servers do not accept natsform's system-account user: are they configured for operator {operator} and its system account (see `natsform server-config`)? Or pass --creds with a system-account user"),
        _ => format!("is nats-server running there and reachable? Check `operators.{operator}.resolver.urls` or --push, or apply with --no-push to write the store only"),
    };
    format!(
        "cannot connect to the servers of operator {operator} at {urls}: {why}\n  = help: {help}"
    )
}

/// Builds the push requests of one operator: UPDATE for each account JWT
/// of `updates` (its issuer chain checked against `trusted` operator keys
/// first), DELETE for each of `deletes`, with `delete_jwt(account)`.
pub fn requests(
    updates: &BTreeMap<String, String>,
    deletes: &[String],
    addresses: &BTreeMap<String, String>,
    trusted: &BTreeSet<String>,
    strict_operator: Option<&str>,
    mut delete_jwt: impl FnMut(&str) -> Result<String>,
) -> Vec<Request> {
    let mut out = Vec::new();
    for (public, jwt) in updates {
        let error = check_chain(public, jwt, trusted, strict_operator).err();
        out.push(Request {
            public: public.clone(),
            address: addresses.get(public).cloned(),
            delete: false,
            payload: jwt.clone().into_bytes(),
            error,
        });
    }
    // Reports list accounts by address (keys are random): deterministic.
    let by_address = |r: &Request| (r.address.is_none(), r.address.clone(), r.public.clone());
    out.sort_by_key(by_address);
    let updates_len = out.len();
    for public in deletes {
        let (payload, error) = match delete_jwt(public) {
            Ok(j) => (j.into_bytes(), None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
        out.push(Request {
            public: public.clone(),
            address: addresses.get(public).cloned(),
            delete: true,
            payload,
            error,
        });
    }
    out[updates_len..].sort_by_key(by_address);
    out
}

/// An account JWT's issuer chain, as a server would check it when it
/// loads the account (the full resolver stores anything at push time):
/// a valid signature, an account JWT of `public`, issued by a key the
/// operator trusts (under strict usage, not the operator's identity).
pub fn check_chain(
    public: &str,
    jwt: &str,
    trusted: &BTreeSet<String>,
    strict_operator: Option<&str>,
) -> Result<(), String> {
    let d = crate::claims::decode(jwt).map_err(|e| format!("not a valid JWT: {e}"))?;
    let crate::claims::AnyClaims::Account(c) = d.claims else {
        return Err("not an account JWT".into());
    };
    if c.data.sub != public {
        return Err(format!("the JWT is for account {}", c.data.sub));
    }
    if !trusted.contains(&c.data.iss) {
        return Err(format!(
            "issued by {}, a key the operator does not trust",
            c.data.iss
        ));
    }
    if strict_operator == Some(c.data.iss.as_str()) {
        return Err("issued by the operator's identity key under strict signing-key usage".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, KeyKind};

    fn account_jwt(subject: &str, signer: &crate::keys::KeyPair) -> String {
        let mut c = crate::claims::AccountClaims::new(subject.to_string());
        c.data.name = "A".into();
        c.data.iat = 1_700_000_000;
        crate::claims::encode(&mut c, signer).unwrap()
    }

    #[test]
    fn the_issuer_chain_is_checked_before_sending() {
        let op = generate(KeyKind::Operator);
        let sk = generate(KeyKind::Operator);
        let acc = generate(KeyKind::Account).public_key();
        let trusted: BTreeSet<String> = [op.public_key(), sk.public_key()].into();
        assert_eq!(
            check_chain(&acc, &account_jwt(&acc, &sk), &trusted, None),
            Ok(())
        );
        assert_eq!(
            check_chain(&acc, &account_jwt(&acc, &op), &trusted, None),
            Ok(())
        );
        let strict = op.public_key();
        assert!(
            check_chain(&acc, &account_jwt(&acc, &op), &trusted, Some(&strict))
                .unwrap_err()
                .contains("strict")
        );
        let stranger = generate(KeyKind::Operator);
        assert!(
            check_chain(&acc, &account_jwt(&acc, &stranger), &trusted, None)
                .unwrap_err()
                .contains("does not trust")
        );
        let other = generate(KeyKind::Account).public_key();
        assert!(check_chain(&other, &account_jwt(&acc, &sk), &trusted, None)
            .unwrap_err()
            .contains("is for account"));
        assert!(check_chain(&acc, "not.a.jwt", &trusted, None).is_err());
    }

    #[test]
    fn requests_with_a_broken_chain_are_never_sent() {
        let op = generate(KeyKind::Operator);
        let acc = generate(KeyKind::Account).public_key();
        let stranger = generate(KeyKind::Operator);
        let updates: BTreeMap<String, String> =
            [(acc.clone(), account_jwt(&acc, &stranger))].into();
        let trusted: BTreeSet<String> = [op.public_key()].into();
        let reqs = requests(
            &updates,
            &[],
            &BTreeMap::new(),
            &trusted,
            None,
            |_| unreachable!(),
        );
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].error.is_some());
        // A result built from it is a failure, whatever the servers say.
        let r = AccountResult::new(&reqs[0]);
        assert!(!r.ok(0));
    }

    #[test]
    fn only_replies_to_the_requests_just_sent_are_matched() {
        let inbox = "_INBOX.natsform.x";
        assert_eq!(request_index("_INBOX.natsform.x.7", inbox, 7, 2), Some(0));
        assert_eq!(request_index("_INBOX.natsform.x.8", inbox, 7, 2), Some(1));
        // An earlier exchange's reply, one past the end, another inbox, junk.
        for stray in [
            "_INBOX.natsform.x.6",
            "_INBOX.natsform.x.9",
            "_INBOX.natsform.y.7",
            "_INBOX.natsform.x7",
            "_INBOX.natsform.x.",
            "_INBOX.natsform.x.-1",
            "_INBOX.natsform.x.99999999999999999999",
        ] {
            assert_eq!(request_index(stray, inbox, 7, 2), None, "{stray}");
        }
    }
}
