//! What a push did, per account and per server: the text apply prints,
//! the JSON document `apply --json` prints, and the progress bar.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// One request to send: an UPDATE of an account JWT or a DELETE.
#[derive(Debug, Clone)]
pub struct Request {
    /// The account's public key.
    pub public: String,
    /// Its address (`account.O/A`) when known.
    pub address: Option<String>,
    pub delete: bool,
    /// The raw payload: the account JWT, or the signed delete request.
    pub payload: Vec<u8>,
    /// Why it is not sent (a broken issuer chain), decided before sending.
    pub error: Option<String>,
}

impl Request {
    pub fn subject(&self) -> &'static str {
        if self.delete {
            "$SYS.REQ.CLAIMS.DELETE"
        } else {
            "$SYS.REQ.CLAIMS.UPDATE"
        }
    }
}

/// What the servers said about one account.
#[derive(Debug, Clone, Default)]
pub struct AccountResult {
    pub public: String,
    pub address: Option<String>,
    pub delete: bool,
    /// Servers that acknowledged.
    pub acknowledged: BTreeSet<String>,
    /// Servers that refused, with their reason.
    pub rejected: BTreeMap<String, String>,
    /// Servers that answered PING but neither acknowledged nor refused.
    pub missing: Vec<String>,
    /// Not sent, or not sendable (issuer chain, connection lost).
    pub error: Option<String>,
    /// A request got "no responders" at least once.
    pub no_responders: bool,
    /// Replies that could not be read.
    pub ignored: Vec<String>,
}

impl AccountResult {
    pub fn new(r: &Request) -> AccountResult {
        AccountResult {
            public: r.public.clone(),
            address: r.address.clone(),
            delete: r.delete,
            error: r.error.clone(),
            ..Default::default()
        }
    }

    /// The account as reports name it: its address, else its key.
    pub fn label(&self) -> &str {
        self.address.as_deref().unwrap_or(&self.public)
    }

    pub fn ok(&self, needed: usize) -> bool {
        self.error.is_none() && self.rejected.is_empty() && self.acknowledged.len() >= needed
    }
}

/// The result of pushing to one operator's servers.
#[derive(Debug, Clone, Default)]
pub struct PushOutcome {
    pub operator: String,
    /// The servers that answered PING.
    pub servers: Vec<String>,
    /// Of those, the ones without a nats-based resolver.
    pub without_resolver: Vec<String>,
    /// How many acknowledgements each account needs.
    pub needed: usize,
    pub accounts: Vec<AccountResult>,
}

impl PushOutcome {
    pub fn ok(&self) -> bool {
        self.accounts.iter().all(|a| a.ok(self.needed))
    }

    /// The lines apply prints: a summary per server (the accounts that
    /// failed are in the error, [`PushOutcome::failures`]).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.servers {
            let acked = self
                .accounts
                .iter()
                .filter(|a| a.acknowledged.contains(s))
                .count();
            let rejected = self
                .accounts
                .iter()
                .filter(|a| a.rejected.contains_key(s))
                .count();
            let mut line = format!(
                "server {s}: {acked} of {} acknowledged",
                self.accounts.len()
            );
            if rejected > 0 {
                line.push_str(&format!(", {rejected} rejected"));
            }
            if self.without_resolver.contains(s) {
                line.push_str(" (no nats-based resolver)");
            }
            out.push(line);
        }
        out
    }

    /// One line per account that failed, for the error apply exits with:
    /// each server's rejection with its reason (and what to do, when
    /// natsform knows), a local error, or too few acknowledgements.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.accounts {
            if a.ok(self.needed) {
                continue;
            }
            let verb = if a.delete { "delete" } else { "update" };
            if let Some(e) = &a.error {
                out.push(format!("{}: not pushed: {e}", a.label()));
            } else if !a.rejected.is_empty() {
                for (server, reason) in &a.rejected {
                    out.push(format!(
                        "{}: server {server} rejected the {verb}: {reason}{}",
                        a.label(),
                        hint(reason)
                    ));
                }
            } else {
                let why = if a.no_responders && a.acknowledged.is_empty() {
                    " (no server answers $SYS.REQ.CLAIMS.*: no nats-based resolver; see `natsform server-config`)".to_string()
                } else if !a.missing.is_empty() {
                    format!(" (no reply from {})", a.missing.join(", "))
                } else if self.servers.len() < self.needed {
                    format!(
                        " (only {} server{} answered $SYS.REQ.SERVER.PING; `resolver.acks` asks for {})",
                        self.servers.len(),
                        if self.servers.len() == 1 { "" } else { "s" },
                        self.needed
                    )
                } else {
                    String::new()
                };
                out.push(format!(
                    "{}: {} of {} server{} acknowledged the {verb}{why}",
                    a.label(),
                    a.acknowledged.len(),
                    self.needed,
                    if self.needed == 1 { "" } else { "s" },
                ));
            }
        }
        out
    }

    /// The document of `apply --json` for this operator (see README:
    /// `format_version` 1 of the deploy report).
    pub fn json(&self) -> Value {
        json!({
            "operator": self.operator,
            "servers": self.servers.iter().map(|s| json!({
                "name": s,
                "resolver": !self.without_resolver.contains(s),
                "acknowledged": self.accounts.iter().filter(|a| a.acknowledged.contains(s)).count(),
                "rejected": self.accounts.iter().filter(|a| a.rejected.contains_key(s)).count(),
            })).collect::<Vec<_>>(),
            "acks_needed": self.needed,
            "ok": self.ok(),
            "accounts": self.accounts.iter().map(|a| json!({
                "account": a.public,
                "address": a.address,
                "request": if a.delete { "delete" } else { "update" },
                "ok": a.ok(self.needed),
                "acknowledged": a.acknowledged,
                "rejected": a.rejected.iter().map(|(s, r)| json!({"server": s, "reason": r})).collect::<Vec<_>>(),
                "missing": a.missing,
                "error": a.error,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What to do about a server's reason, when natsform knows.
fn hint(reason: &str) -> &'static str {
    if reason.contains("delete must be enabled") || reason.contains("not set up to for delete") {
        " (set `allow_delete: true` in the server's resolver block and restart it)"
    } else if reason.contains("not allowed to delete system account") {
        " (the system account is never deleted from a server)"
    } else {
        ""
    }
}

/// A progress bar on a terminal (stderr), nothing in a pipe or when quiet.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar when `show` and stderr is a terminal.
    pub fn new(show: bool) -> Progress {
        use std::io::IsTerminal;
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        Progress { bar }
    }

    /// No bar.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn start(&self, len: usize, what: &str) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_length(len as u64);
            b.set_message(what.to_string());
        }
    }

    pub fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
