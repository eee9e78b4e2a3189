//! Executing a plan, as a sequence of small steps. The first four work in
//! memory only (step 2 reads the vault); the next ones write, in phases:
//! each phase is one [`Batch`](crate::fsutil::Batch) (temporary files,
//! made durable together, renamed, directories synced), committed before
//! the next phase starts, and only files whose bytes change are written.
//!
//! | step | function | touches | phase |
//! |---|---|---|---|
//! | 0. refuse a blocked plan | `refuse_blockers` | nothing | |
//! | 1. generate new keys | `generate_keys` | memory | |
//! | 2. unlock the signers | `unlock_signers` | reads the vault | |
//! | 3. sign every JWT | `sign_all` | memory | |
//! | 4. build the new lock | `new_lock` | memory | |
//! | 4b. re-seal seeds to the declared recipients | `reseal_in_memory` | reads the vault | |
//! | 4c. seal the bundles of user seeds that change | `seal_bundles` | reads the vault | |
//! | 5. write the new seeds and bundles | `write_seeds`, `write_bundles` | `vault/` | `seeds` |
//! | 5b. write the re-sealed seeds | `write_resealed` | `vault/` | `seeds` |
//! | 6. write the lock | `write_lock` | `natsform.lock` | `lock` |
//! | 7. write and delete JWTs | `write_store` | `store/` | `store` |
//! | 7a. remove seeds no kept lock entry names | `remove_orphans` | `vault/` | after `store` |
//! | 7b. commit what 5–7 wrote (`--commit`) | `commit::Commit::record` | git: `HEAD` and those paths of the index | |
//! | 8. deploy to NATS servers | `deploy` | servers (never files) | |
//!
//! Two guarantees follow from the order, and [`apply`] is where they are
//! kept:
//!
//! - **Nothing is written when anything fails before step 5**: a missing
//!   identity, a damaged seed, claims NATS would reject, a plan out of date
//!   with the manifest. Every JWT (and activation token) is signed and the
//!   lock's new content built before the first write.
//! - **Seeds, then the lock, then JWTs; old seeds last.** An interruption
//!   at any point leaves a state the next apply converges from, and loses
//!   no key a JWT on disk depends on. The argument:
//!   1. *Within a phase*, a batch writes every new file under a temporary
//!      name and makes it durable before the first rename; a rename is
//!      atomic. So a crash leaves each target with its old bytes or its
//!      complete new bytes, never a mix (a rename whose directory was not
//!      synced yet may be undone: the old bytes again), plus temporary
//!      files nothing reads, which the next run sweeps under its run lock.
//!      Any subset of one phase's renames may survive; order inside a
//!      phase guarantees nothing, and nothing relies on it.
//!   2. *Across phases*, a phase starts only when the previous one's
//!      commit returned: its renames and removals done and its directories
//!      synced. After a crash in phase N, every earlier phase is entirely
//!      on disk and every later one entirely absent.
//!   3. *Seeds first*: a key generated now is named by the lock (phase
//!      `lock`) and by JWTs (phase `store`) only once its sealed seed is
//!      durable (phase `seeds`). The vault never overwrites a seed; a
//!      re-sealed seed is the same seed, old or new bytes both open with an
//!      identity. A seed whose lock entry did not make it is an orphan the
//!      next plan shows and the next apply removes; the key is generated
//!      again.
//!   4. *Old seeds last*: a seed the new lock no longer names is removed
//!      (step 7a) only after the `store` phase is durable, when no JWT on
//!      disk is signed by it or names it. Until then, a JWT that still
//!      depends on an old key (a store not yet rewritten) finds its seed.
//!   5. *Convergence*: the lock and the store are each the old or the new
//!      file per path; the next plan compares them with the manifest and
//!      re-issues what differs, signing with the keys the lock binds (all
//!      of whose seeds are durable, by 3). Revocations live in both the
//!      lock and the account JWT, and either record restores the other.
//!
//!   `NATSFORM_FAULT=<phase>:<point>` (`fsutil::fault`) is a testing hook
//!   that stops the process at any of these points, like a crash;
//!   `tests/interrupted_apply.rs` stops at each in turn and checks 3–5.
//!
//! Step 8 pushes account JWTs to live servers (`crate::deploy`): after the
//! store is written, so that a server never holds a JWT the repository does
//! not; a push that fails leaves the store written, for the next run to
//! push again. It runs only when the caller passes a [`Deploy`].

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde_json::Value;

use crate::claims::{self, ClaimPayload, Claims, Validate};
use crate::fsutil::Batch;
use crate::keys::{
    self, DeletedAccounts, Identities, IdentitySources, KeyKind, KeyPair, Lock, Recipients,
    Revocations, Vault,
};
use crate::plan::keyref::ExpectedActivation;
use crate::plan::{
    self, Action, ActionKind, DesiredClaims, DesiredObject, DesiredState, KeyBook, KeyRef, Plan,
};
use crate::tree::{ObjectId, ObjectKind};
use crate::verified::{self, Remembered};
use crate::workspace::Workspace;

pub mod commit;

/// What apply did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub keys_generated: usize,
    pub jwts_written: usize,
    pub jwts_deleted: usize,
    pub lock_changed: bool,
    pub seeds_resealed: usize,
    pub seeds_removed: usize,
    /// Why the verified-signature cache could not learn the JWTs written
    /// (a note for the CLI; the next plan verifies them again).
    pub cache_note: Option<String>,
    /// Notes about the cache of checked bundles (ignored, or it could not
    /// learn the bundles written): never an error, every line is then
    /// checked.
    pub bundle_cache_notes: Vec<String>,
}

/// How apply tells a person what it does: lines (a step, a file written)
/// and counted work (signing, writing) that a terminal may show as a bar.
/// Only `line` is required; the counting methods default to nothing.
pub trait Progress {
    /// One line for the user.
    fn line(&mut self, text: &str);
    /// `total` items of `what` (e.g. "Signing JWTs") begin.
    fn start(&mut self, _what: &str, _total: usize) {}
    /// `n` more items of the current work are done.
    fn inc(&mut self, _n: usize) {}
    /// The current work is over.
    fn finish(&mut self) {}
}

/// Lines only, to a closure.
struct Lines<'a>(&'a mut dyn FnMut(&str));

impl Progress for Lines<'_> {
    fn line(&mut self, text: &str) {
        (self.0)(text)
    }
}

/// How many JWTs are signed (in parallel) between two progress counts.
const SIGN_CHUNK: usize = 1024;

/// Applies `plan` (computed from `ws`) at time `now` (unix seconds).
/// `progress` receives one line per step for the user.
///
/// The order of the steps below is the guarantee of this module (see its
/// documentation): everything that can fail on bad input runs before the
/// first write, and the writes go seeds → lock → JWTs.
pub fn apply(
    ws: &Workspace,
    plan: &Plan,
    identities: &IdentitySources,
    now: i64,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    apply_and_deploy(
        ws,
        plan,
        None,
        identities,
        now,
        &mut Lines(progress),
        None,
        None,
    )
}

/// [`apply`], then step 8 when `deploy` is given: push to the servers of
/// each of its targets; what they said is left in `deploy.outcomes` (a
/// failed push is not an error here: the store is written). With `commit`
/// (`--commit`, prepared before the plan was confirmed), step 7b commits
/// what the writes changed, before the push. `planned`: the desired state
/// the plan was computed from ([`Workspace::plan_and_state`]), signed from
/// when apply generates no key.
#[allow(clippy::too_many_arguments)] // each is one input of one apply
pub fn apply_and_deploy(
    ws: &Workspace,
    plan: &Plan,
    planned: Option<DesiredState>,
    identities: &IdentitySources,
    now: i64,
    progress: &mut dyn Progress,
    deploy: Option<&mut Deploy>,
    commit: Option<&mut commit::Commit>,
) -> Result<Report> {
    refuse_blockers(plan)?;
    let required = ws.required_keys();

    // In memory: every step that can refuse runs before the first write.
    let mut keys = generate_keys(ws, plan, required)?; // 1
    let state = desired_for(ws, &keys, planned);
    let mut desired = state.objects;
    unlock_signers(ws, plan, &desired, &mut keys.pairs, identities, &mut |l| {
        progress.line(l)
    })?; // 2

    // 3. Signed, the desired claims are not needed again: freed beside the
    // steps that follow, not on their time.
    let tokens = sign_all(ws, plan, &mut desired, &keys.pairs, now, progress)?;
    crate::workspace::drop_elsewhere(desired);
    let deleted =
        plan::live::deleted_after(ws.lock.deleted_accounts(), &plan.actions, &ws.existing);
    let lock = new_lock(&keys.book, &state.revocations, deleted)?; // 4
    let resealed = reseal_in_memory(ws, plan, identities, &mut |l| progress.line(l))?; // 4b
    let bundles = seal_bundles(ws, plan, &mut keys, identities, &mut |l| progress.line(l))?; // 4c

    // On disk: seeds, then the lock, then JWTs, in this order and no other;
    // each phase one batch, committed (durable, directories synced) before
    // the next phase starts.
    let mut report = Report::default();
    let mut seeds = Batch::for_phase("seeds");
    write_seeds(ws, &keys, &mut seeds, &mut report)?; // 5
    let sealed = write_bundles(ws, &bundles, &mut seeds, &mut report)?; // 5
    write_resealed(ws, &resealed, &mut seeds, &mut report)?; // 5b
    seeds.commit().context("storing the seeds")?;
    seeds_written(ws, &keys, sealed, &report, &mut |l| progress.line(l));
    write_lock(ws, &lock, &mut report)?; // 6
    write_store(ws, plan, &tokens, &mut report, progress)?; // 7

    // The cache learns what this apply signed, once it is in the store
    // (the first plan after an apply then verifies none of it).
    report.cache_note = ws.remember_applied(plan, &tokens).err();
    remove_orphans(ws, plan, &lock, &bundles, &mut report, &mut |l| {
        progress.line(l)
    })?; // 7a
    report.bundle_cache_notes.extend(bundles.note.clone());
    if let Err(e) = remember_bundles(&bundles) {
        report.bundle_cache_notes.push(format!(
            "could not remember the bundles of user seeds sealed ({e}); the next apply that opens them checks every line again"
        ));
    }

    // 7b. Commit what was written, before the push: a push that fails
    // leaves the store written and committed, and the next run pushes it.
    if let Some(commit) = commit {
        commit.record(plan, &mut |l| progress.line(l))?;
    }

    // 8. Deploy to NATS servers, after the store is written (see the module
    // documentation).
    if let Some(deploy) = deploy {
        deploy_step(ws, plan, &tokens, &mut keys, identities, deploy, &mut |l| {
            progress.line(l)
        })
        .map_err(|e| store_written_not_deployed(&e, &report))?;
    }
    Ok(report)
}

/// The error of step 8 when it fails before a push could report per
/// server (no connection, no credentials): the store is written by now, so
/// the message says so and points at the run that finishes the deploy; a
/// help that suggests `--no-push` (right before anything was written) is
/// left out.
fn store_written_not_deployed(e: &anyhow::Error, report: &Report) -> anyhow::Error {
    let mut reason = Vec::new();
    let mut help = Vec::new();
    let text = e
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  caused by: ");
    for line in text.lines() {
        match line.trim_start().strip_prefix("= help:") {
            Some(h) => {
                let h = without_no_push(h.trim());
                if !h.is_empty() {
                    help.push(h);
                }
            }
            None => reason.push(line.to_string()),
        }
    }
    if help.is_empty() {
        help.push("fix the cause above, then run `natsform apply` again".to_string());
    }
    anyhow!(
        "the store is written ({} JWT{} written, {} deleted), but deploying it to the servers failed: {}\n  = note: nothing is lost: `natsform plan --live` shows what the servers lack or still hold, and the next `natsform apply` pushes or deletes it\n{}",
        report.jwts_written,
        if report.jwts_written == 1 { "" } else { "s" },
        report.jwts_deleted,
        reason.join("\n"),
        help.iter()
            .map(|h| format!("  = help: {h}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// `help` without its suggestion to apply with `--no-push`.
fn without_no_push(help: &str) -> String {
    const CLAUSES: [&str; 3] = [
        ", or apply with --no-push to write the store only",
        ", or apply with --no-push",
        ", apply with --no-push",
    ];
    let mut h = help.to_string();
    for c in CLAUSES {
        h = h.replace(c, "");
    }
    if h.contains("--no-push") {
        // A suggestion worded otherwise: not shown after the store is written.
        String::new()
    } else {
        h
    }
}

/// What step 8 needs and leaves: where to push, the sessions already open
/// (apply reads live before planning), and each operator's outcome.
pub struct Deploy {
    pub targets: Vec<crate::deploy::Target>,
    pub sessions: BTreeMap<String, crate::deploy::Session>,
    /// `--creds FILE`, else a minted system-account user.
    pub creds: Option<std::path::PathBuf>,
    /// `--prune`: also delete live accounts this manifest never managed.
    pub prune: bool,
    pub bar: crate::deploy::report::Progress,
    /// Filled by step 8, one per target.
    pub outcomes: Vec<crate::deploy::PushOutcome>,
}

/// Step 8, network only. Per target operator: UPDATE every account JWT
/// this apply signed and every one the live plan says a server lacks or
/// holds in another version (from the store); DELETE every account this
/// apply deleted and every one the live plan says came back (or, with
/// `--prune`, was never managed). Each JWT's issuer chain is checked
/// against the operator's keys before it is sent.
#[allow(clippy::too_many_arguments)]
fn deploy_step(
    ws: &Workspace,
    plan: &Plan,
    tokens: &BTreeMap<ObjectId, String>,
    keys: &mut Keys,
    identities: &IdentitySources,
    deploy: &mut Deploy,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    use crate::manifest::address;
    let vault = Vault::new(&ws.vault_dir);
    let mut secrets: Option<Identities> = None;
    let mut pair = |public: &str, pairs: &mut HashMap<String, KeyPair>| -> Result<KeyPair> {
        if let Some(kp) = pairs.get(public) {
            return Ok(clone_pair(kp));
        }
        let ids = match &mut secrets {
            Some(ids) => ids,
            None => secrets.insert(
                Identities::load(identities)
                    .context("deploying needs the seeds of the system account and the operator")?,
            ),
        };
        let kp = vault.get(public, ids)?;
        pairs.insert(public.to_string(), clone_pair(&kp));
        Ok(kp)
    };
    for target in deploy.targets.clone() {
        let op_name = &target.operator;
        let Some(op) = ws.loaded.manifest.operators.get(op_name) else {
            continue;
        };
        // The JWT of each account of this operator as the store now holds it.
        let mut jwt_of: BTreeMap<String, String> = BTreeMap::new();
        let mut address_of: BTreeMap<String, String> = BTreeMap::new();
        for (id, e) in &ws.existing {
            if id.operator == *op_name && id.kind() == ObjectKind::Account {
                if let Ok(d) = &e.decoded {
                    jwt_of.insert(d.subject.clone(), e.token.to_string());
                    address_of.insert(d.subject.clone(), id.address());
                }
            }
        }
        let mut updates: BTreeMap<String, String> = BTreeMap::new();
        let mut deletes: Vec<String> = Vec::new();
        for action in &plan.actions {
            if action.id.operator != *op_name || action.id.kind() != ObjectKind::Account {
                continue;
            }
            if action.action == ActionKind::Delete {
                if let Some(Ok(d)) = ws.existing.get(&action.id).map(|e| &e.decoded) {
                    deletes.push(d.subject.clone());
                }
                continue;
            }
            let token = &tokens[&action.id];
            let public = claims::peek(token)
                .map(|d| d.claims.data().sub)
                .unwrap_or_default();
            address_of.insert(public.clone(), action.id.address());
            jwt_of.insert(public.clone(), token.clone());
            updates.insert(public, token.clone());
        }
        let deleted: std::collections::BTreeSet<String> = deletes.iter().cloned().collect();
        if let Some(live) = plan.live.iter().find(|l| l.operator == *op_name) {
            for item in &live.items {
                if let Some(a) = &item.address {
                    address_of
                        .entry(item.public.clone())
                        .or_insert_with(|| a.clone());
                }
            }
            for public in live.to_update() {
                if deleted.contains(public) {
                    continue;
                }
                if let Some(jwt) = jwt_of.get(public) {
                    updates
                        .entry(public.to_string())
                        .or_insert_with(|| jwt.clone());
                }
            }
            for public in live.to_delete(deploy.prune) {
                let new = !deletes.iter().any(|d| d == public);
                if new && !deleted.contains(public) && !updates.contains_key(public) {
                    deletes.push(public.to_string());
                }
            }
        }
        if updates.is_empty() && deletes.is_empty() {
            deploy.sessions.remove(op_name);
            continue;
        }
        // The operator keys servers trust for this operator after this apply.
        let identity = keys
            .book
            .get(&address::key(&address::operator(op_name), &op.key))
            .cloned();
        let signing: Vec<String> = op
            .signing_keys
            .iter()
            .filter_map(|l| {
                keys.book
                    .get(&address::key(&address::operator_signing_key(op_name), l))
                    .cloned()
            })
            .collect();
        let trusted: std::collections::BTreeSet<String> =
            identity.iter().chain(signing.iter()).cloned().collect();
        let strict_identity = identity.as_deref().filter(|_| op.strict_signing_key_usage);
        let delete_signer = if op.strict_signing_key_usage {
            signing.first().cloned()
        } else {
            identity.clone()
        };
        let mut delete_jwt = |account: &str| -> Result<String> {
            let public = delete_signer
                .clone()
                .ok_or_else(|| anyhow!("operator {op_name} has no key to sign a delete with"))?;
            let kp = pair(&public, &mut keys.pairs)?;
            crate::deploy::auth::delete_request(
                &kp,
                &[account.to_string()],
                crate::deploy::wall_clock(),
            )
        };
        let requests = crate::deploy::requests(
            &updates,
            &deletes,
            &address_of,
            &trusted,
            strict_identity,
            &mut delete_jwt,
        );
        // A session from the live read is reused while young: a minted
        // user expires (and servers close its connection) after two minutes,
        // and apply may have waited for a confirmation meanwhile.
        let reusable = deploy.sessions.remove(op_name).filter(|s| s.is_fresh());
        let mut session = match reusable {
            Some(s) => s,
            None => {
                let creds = match &deploy.creds {
                    Some(file) => crate::deploy::auth::from_creds_file(file)?,
                    None => {
                        let addr = crate::deploy::system_signer_address(ws, op_name)?;
                        // The key the servers know: the lock's from before
                        // this apply, else (a first deploy) the new one.
                        let public = ws
                            .lock
                            .get(&addr)
                            .map(str::to_string)
                            .or_else(|| keys.book.get(&addr).cloned())
                            .ok_or_else(|| {
                                anyhow!("operator {op_name}: the system account's key {addr} is not in natsform.lock")
                            })?;
                        let sys = crate::deploy::system_account_key(ws, op_name, &ws.key_book())
                            .or_else(|| crate::deploy::system_account_key(ws, op_name, &keys.book))
                            .ok_or_else(|| {
                                anyhow!("operator {op_name} has no system account key")
                            })?;
                        let kp = pair(&public, &mut keys.pairs)?;
                        crate::deploy::auth::mint(&kp, &sys, crate::deploy::wall_clock())?
                    }
                };
                crate::deploy::Session::open(&target, creds)?
            }
        };
        progress(&format!(
            "Pushing {} account{} to the servers of operator {op_name}…",
            requests.len(),
            if requests.len() == 1 { "" } else { "s" }
        ));
        let outcome = session.push(requests, &deploy.bar);
        for note in session.notes.drain(..) {
            progress(&note);
        }
        deploy.outcomes.push(outcome);
    }
    Ok(())
}

/// A copy of a key pair (nkeys' `KeyPair` is not `Clone`), through its seed,
/// which never leaves memory.
fn clone_pair(kp: &KeyPair) -> KeyPair {
    let seed = zeroize::Zeroizing::new(kp.seed().expect("a key pair with its seed"));
    KeyPair::from_seed(&seed).expect("its own seed")
}

/// Step 0. Refuses a plan with blockers (missing or damaged seeds, keys
/// the lock does not name…) before anything else happens.
fn refuse_blockers(plan: &Plan) -> Result<()> {
    if !plan.blockers.is_empty() {
        bail!(
            "the plan has problems apply refuses to work around: {}",
            plan.blockers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// The keys of this apply, in memory.
struct Keys {
    /// Address → public key: what the lock will hold.
    book: KeyBook,
    /// Public key → key pair: the keys generated now and the signers
    /// unlocked from the vault. Never printed, never written in clear.
    pairs: HashMap<String, KeyPair>,
    /// `(address, public key)` of each key generated now, in plan order:
    /// the seeds step 5 stores.
    generated: Vec<(String, String)>,
    /// Whom those seeds are encrypted to; parsed only when there are some.
    recipients: Option<Recipients>,
}

/// The desired state for the keys apply will bind: the plan's (`planned`,
/// computed for the lock's keys) when apply generated none and binds no key
/// the lock does not (every address the manifest names then resolves as it
/// did for the plan), else built again. Debug builds (the tests) build it
/// again anyway and compare.
fn desired_for(ws: &Workspace, keys: &Keys, planned: Option<DesiredState>) -> DesiredState {
    let bound = ws.lock.bindings();
    let same_keys = keys.generated.is_empty()
        && keys
            .book
            .iter()
            .all(|(addr, key)| bound.get(addr) == Some(key));
    match planned {
        Some(state) if same_keys => {
            debug_assert_eq!(
                format!("{:?}", ws.desired(&keys.book)),
                format!("{state:?}"),
                "the plan's desired state differs from apply's"
            );
            state
        }
        other => {
            if let Some(state) = other {
                crate::workspace::drop_elsewhere(state);
            }
            ws.desired(&keys.book)
        }
    }
}

/// Step 1, memory only. Generates a key pair for every new key the plan
/// names (bring-your-own keys are bound, never generated) and builds the
/// key book the lock will hold: the lock's bindings the manifest still
/// requires, plus the new ones.
///
/// Fails, before anything is written, when the plan names a key the
/// manifest does not, or the manifest's recipients do not parse.
fn generate_keys(ws: &Workspace, plan: &Plan, required: &plan::RequiredKeys) -> Result<Keys> {
    let mut book: KeyBook = ws.key_book();
    // Bindings the manifest no longer names leave the lock; their seeds stay
    // in the vault, since a JWT may still depend on them until re-issued.
    book.retain(|addr, _| required.contains_key(addr));
    // (address, kind) of each key to generate, in plan order.
    let mut to_generate: Vec<(&String, KeyKind)> = Vec::new();
    for addr in &plan.new_keys {
        let Some((kind, byo)) = required.get(addr) else {
            bail!("the plan names key {addr}, which the manifest does not")
        };
        match byo {
            Some(public) => {
                book.insert(addr.clone(), public.clone());
            }
            None => to_generate.push((addr, *kind)),
        }
    }
    // In parallel (a key pair is a scalar multiplication, ≈ 20 µs); the
    // order of `generated` stays the plan's.
    let made: Vec<(KeyPair, String)> = to_generate
        .par_iter()
        .map(|(_, kind)| {
            let kp = keys::generate(*kind);
            let public = kp.public_key();
            (kp, public)
        })
        .collect();
    let mut pairs: HashMap<String, KeyPair> = HashMap::with_capacity(made.len());
    let mut generated: Vec<(String, String)> = Vec::with_capacity(made.len());
    for ((addr, _), (kp, public)) in to_generate.into_iter().zip(made) {
        book.insert(addr.clone(), public.clone());
        generated.push((addr.clone(), public.clone()));
        pairs.insert(public, kp);
    }
    for (addr, (_, byo)) in required {
        if let Some(public) = byo {
            book.insert(addr.clone(), public.clone());
        }
    }
    let recipients = if generated.is_empty() {
        None
    } else {
        Some(Recipients::parse(&ws.loaded.manifest.secrets.recipients)?)
    };
    Ok(Keys {
        book,
        pairs,
        generated,
        recipients,
    })
}

/// The desired object of a non-delete `action`; an error when the plan was
/// computed from another manifest.
fn desired_of<'a>(
    desired: &'a BTreeMap<ObjectId, DesiredObject>,
    action: &Action,
) -> Result<&'a DesiredObject> {
    desired.get(&action.id).ok_or_else(|| {
        anyhow!(
            "{}: the plan is out of date with the manifest; run plan again",
            action.address
        )
    })
}

/// Step 2, reads the vault, writes nothing. Puts the key pair of every key that signs
/// something in this plan (each object's signer and the exporters' keys of
/// its activations) into `pairs`, decrypting only those seeds, and loading
/// the identities once, on first need: an apply that signs only with keys
/// it generated needs no identity.
///
/// Fails, before anything is written, on a missing identity, a missing or
/// damaged seed, or a seed file that holds another key.
fn unlock_signers(
    ws: &Workspace,
    plan: &Plan,
    desired: &BTreeMap<ObjectId, DesiredObject>,
    pairs: &mut HashMap<String, KeyPair>,
    identities: &IdentitySources,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let vault = Vault::new(&ws.vault_dir);
    let mut secrets: Option<Identities> = None;
    for action in &plan.actions {
        if action.action == ActionKind::Delete {
            continue;
        }
        let want = desired_of(desired, action)?;
        let signers =
            std::iter::once(&*want.signer).chain(want.activations.iter().map(|a| &a.signer));
        for key in signers {
            unlock(
                key,
                &action.address,
                pairs,
                &mut secrets,
                identities,
                &vault,
                progress,
            )?;
        }
    }
    Ok(())
}

/// Makes sure the seed of `key` is in `pairs` (decrypting it from the vault
/// on first need, loading identities once) and returns its public key.
#[allow(clippy::too_many_arguments)]
fn unlock(
    key: &KeyRef,
    address: &str,
    pairs: &mut HashMap<String, KeyPair>,
    secrets: &mut Option<Identities>,
    identities: &IdentitySources,
    vault: &Vault,
    progress: &mut dyn FnMut(&str),
) -> Result<String> {
    let public = key
        .public
        .clone()
        .ok_or_else(|| anyhow!("{address}: signing key {} has no public key", key.address))?;
    if !pairs.contains_key(&public) {
        let ids = match secrets {
            Some(ids) => ids,
            None => {
                progress("Decrypting signing keys from the vault…");
                secrets.insert(
                    Identities::load(identities).context("apply must sign with existing keys")?,
                )
            }
        };
        let kp = vault.get(&public, ids).with_context(|| {
            format!("{address}: reading the seed of signing key {}", key.address)
        })?;
        pairs.insert(public.clone(), kp);
    }
    Ok(public)
}

/// Step 3, memory only. Signs the JWT of every created, updated, re-issued
/// or replaced object, with its activation tokens embedded, and returns
/// them by object. Each is issued at `now`, or later when it must be
/// strictly newer than the JWT it replaces or than a revocation of its key.
///
/// Fails, before anything is written, on claims the nats-io/jwt library
/// would reject.
fn sign_all(
    ws: &Workspace,
    plan: &Plan,
    desired: &mut BTreeMap<ObjectId, DesiredObject>,
    pairs: &HashMap<String, KeyPair>,
    now: i64,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<ObjectId, String>> {
    let todo: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| a.action != ActionKind::Delete)
        .collect();
    let mut tokens: BTreeMap<ObjectId, String> = BTreeMap::new();
    progress.start("Signing JWTs", todo.len());
    for chunk in todo.chunks(SIGN_CHUNK) {
        // In parallel; the first failure in plan order is the one reported.
        let signed: Vec<Result<String>> = chunk
            .par_iter()
            .map(|action| sign_action(ws, action, desired, pairs, now))
            .collect();
        for (action, token) in chunk.iter().zip(signed) {
            tokens.insert(action.id.clone(), token?);
            // A user's desired claims are done with once it is signed (an
            // account's are read by its users' signing): 100,000 users'
            // claims are not held beside their 100,000 JWTs.
            if action.id.user.is_some() {
                desired.remove(&action.id);
            }
        }
        progress.inc(chunk.len());
    }
    progress.finish();
    Ok(tokens)
}

/// The JWT of one action of step 3.
fn sign_action(
    ws: &Workspace,
    action: &Action,
    desired: &BTreeMap<ObjectId, DesiredObject>,
    pairs: &HashMap<String, KeyPair>,
    now: i64,
) -> Result<String> {
    let want = desired_of(desired, action)?;
    let signer = &pairs[want.signer.public.as_ref().expect("unlocked in step 2")];
    let previous_iat = ws
        .existing
        .get(&action.id)
        .and_then(|e| e.decoded.as_ref().ok())
        .map(|d| d.issued_at);
    // A re-issued JWT must be strictly newer than the one it replaces
    // (resolvers skip an equal iat with an equal jti), and a user's JWT
    // newer than any revocation of its key (revocation matches iat <= t).
    let revoked = match (action.id.account_id(), &want.subject.public) {
        (Some(acc), Some(key)) if action.id.user.is_some() => desired
            .get(&acc)
            .and_then(|a| plan::revocations::revoked_at(&a.claims, key)),
        _ => None,
    };
    let iat = [
        Some(now),
        previous_iat.map(|p| p + 1),
        revoked.map(|r| r + 1),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now);
    let activations = want
        .activations
        .iter()
        .map(|act| {
            activation(act, iat, pairs).with_context(|| {
                format!(
                    "{}: issuing the activation for {}",
                    action.address, act.subject
                )
            })
        })
        .collect::<Result<Vec<String>>>()?;
    sign(want, iat, &activations, signer).with_context(|| format!("signing {}", action.address))
}

/// Step 4, memory only. The lock apply will write: every binding of
/// `book`, the revocation record (the second record of every
/// revocation, beside the account JWTs), and the record of deleted
/// accounts (so a server that brings one back is known to hold ours).
fn new_lock(book: &KeyBook, revocations: &Revocations, deleted: DeletedAccounts) -> Result<Lock> {
    let mut lock = Lock::new();
    for (addr, public) in book {
        lock.insert(addr.clone(), public.clone())?;
    }
    lock.set_revocations(revocations.clone());
    lock.set_deleted_accounts(deleted);
    Ok(lock)
}

/// Step 5, the first write, in the `seeds` batch. Stores the seed of every
/// key generated in step 1 but users' (those go to their account's bundle),
/// age-encrypted to the manifest's recipients (in parallel), before the
/// lock or any JWT names its key. The vault never overwrites a seed.
fn write_seeds(ws: &Workspace, keys: &Keys, batch: &mut Batch, report: &mut Report) -> Result<()> {
    use rayon::prelude::*;
    let Some(recipients) = &keys.recipients else {
        return Ok(());
    };
    let vault = Vault::new(&ws.vault_dir);
    let own: Vec<&(String, String)> = keys
        .generated
        .iter()
        .filter(|(_, public)| keys::kind_of_public_key(public) != Some(KeyKind::User))
        .collect();
    let sealed: Vec<(std::path::PathBuf, Vec<u8>)> = own
        .par_iter()
        .map(|(addr, public)| {
            vault
                .seal_new(&keys.pairs[public], recipients)
                .with_context(|| format!("storing the seed of {addr}"))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    batch
        .write_many(&sealed, keys::VAULT_FILE_MODE)
        .with_context(|| format!("storing seeds in {}", ws.vault_dir.display()))?;
    report.keys_generated += keys.generated.len();
    Ok(())
}

/// What step 5 says once the `seeds` batch is durable.
fn seeds_written(
    ws: &Workspace,
    keys: &Keys,
    bundles: usize,
    report: &Report,
    progress: &mut dyn FnMut(&str),
) {
    if !keys.generated.is_empty() {
        progress(&format!(
            "Stored {} new seed{} in {}",
            keys.generated.len(),
            if keys.generated.len() == 1 { "" } else { "s" },
            ws.vault_dir.display()
        ));
    }
    if bundles > 0 {
        progress(&format!(
            "Sealed {bundles} bundle{} of user seeds in {}",
            if bundles == 1 { "" } else { "s" },
            ws.vault_dir.display()
        ));
    }
    if report.seeds_resealed > 0 {
        let n = report.seeds_resealed;
        progress(&format!(
            "Re-sealed {n} seed{} to secrets.recipients",
            if n == 1 { "" } else { "s" }
        ));
    }
}

/// What step 4c sealed: the bundles to write, and the users' own seed
/// files whose seeds moved into a bundle (removed in step 7a).
#[derive(Default)]
struct Bundles {
    writes: Vec<BundleWrite>,
    legacy: Vec<String>,
    /// The cache of bundles this user's applies sealed, and what it
    /// held, when bundles were sealed with it.
    checked: Option<(verified::Cache, Remembered)>,
    /// Why that cache was ignored.
    note: Option<String>,
}

/// One account's bundle to write.
struct BundleWrite {
    account: String,
    /// The sealed bundle; `None` when it holds the right seeds already
    /// (only its index is brought in line).
    armored: Option<Vec<u8>>,
    /// The user keys it holds, sorted: its index.
    keys: Vec<String>,
    /// Only its recipients change.
    only_reseal: bool,
    /// The bundle without the seeds of users leaving it, and its index,
    /// written in step 7a (after the store).
    late: Option<(Vec<u8>, Vec<String>)>,
    /// The digests of the sealed bundles it was made from (its own and its
    /// replaced key's), which the bundles written replace.
    opened: Vec<verified::Digest>,
}

/// Step 4c, reads the vault, writes nothing. For every account whose users
/// change (added, leaving, the account's key replaced) or whose bundle the
/// plan re-seals: opens what holds its users' seeds today (its bundle, the
/// bundle of its replaced key, users' own seed files from before bundles),
/// each line checked, adds the seeds generated in step 1, keeps exactly the
/// users the new lock binds, and seals the bundle to `secrets.recipients`,
/// accounts in parallel. A kept user whose seed is nowhere stops apply
/// before its first write. Accounts whose users did not change are not
/// touched.
fn seal_bundles(
    ws: &Workspace,
    plan: &Plan,
    keys: &mut Keys,
    identities: &IdentitySources,
    progress: &mut dyn FnMut(&str),
) -> Result<Bundles> {
    use rayon::prelude::*;
    let reseal: std::collections::BTreeSet<&str> = plan
        .vault
        .reseal
        .iter()
        .filter(|r| r.bundle)
        .map(|r| r.public_key.as_str())
        .collect();
    let work: Vec<(plan::vault::AccountUsers, Option<plan::vault::BundleChange>)> =
        plan::vault::account_users(&ws.loaded.manifest, ws.lock.bindings(), &keys.book)
            .into_iter()
            .filter_map(|a| {
                let change = a.change(
                    |k| {
                        ws.bundles
                            .contains_key(k)
                            .then(|| ws.bundle_users.get(k).map(Vec::as_slice).unwrap_or(&[]))
                    },
                    |k| ws.sealed.contains_key(k),
                );
                let resealed = a.public_key.as_deref().is_some_and(|k| reseal.contains(k));
                (change.is_some() || resealed).then_some((a, change))
            })
            .collect();
    if work.is_empty() {
        return Ok(Bundles::default());
    }
    let recipients = Recipients::parse(&ws.loaded.manifest.secrets.recipients)?;
    let opens = work
        .iter()
        .any(|(_, c)| c.as_ref().is_none_or(|c| !c.fresh));
    let ids = if opens {
        progress("Opening the bundles of user seeds that change…");
        Some(
            Identities::load(identities)
                .context("apply must open the bundles of user seeds it rewrites")?,
        )
    } else {
        None
    };
    // Bundles this user's applies sealed need no line-by-line check again
    // (see `verified`); used only beside the signature cache.
    let (checked, note) = match ws.bundle_cache() {
        Some(cache) => {
            let (remembered, note) = cache.load();
            (Some((cache, remembered)), note)
        }
        None => (None, None),
    };
    let none = Remembered::default();
    let remembered = checked.as_ref().map_or(&none, |(_, r)| r);
    // The users' new key pairs move into their bundles (users sign nothing),
    // taken out of `keys.pairs` as each account's bundle is sealed (no
    // second map of 100,000 key pairs meanwhile).
    let vault = Vault::new(&ws.vault_dir);
    let generated = std::sync::Mutex::new(&mut keys.pairs);
    let sealed: Vec<Option<(BundleWrite, Vec<String>)>> = work
        .par_iter()
        .map(|(a, change)| {
            seal_bundle(
                ws,
                &vault,
                a,
                change.as_ref(),
                &reseal,
                ids.as_ref(),
                &generated,
                &recipients,
                remembered,
            )
            .with_context(|| format!("sealing the user seeds of {}", a.account))
        })
        .collect::<Result<_>>()?;
    // Every new user key must have gone into a bundle: a key the lock and
    // a JWT will name without its seed sealed is the one loss apply exists
    // to prevent, so a disagreement between the plan's new keys and its
    // bundle changes stops here, before any write.
    let pairs = generated
        .into_inner()
        .map_err(|_| anyhow::anyhow!("sealing panicked"))?;
    let unplaced = keys
        .generated
        .iter()
        .map(|(_, public)| public)
        .filter(|public| {
            keys::kind_of_public_key(public) == Some(KeyKind::User) && pairs.contains_key(*public)
        });
    if let Some(public) = unplaced.min() {
        bail!(
            "internal error: the new user key {public} belongs to no bundle this apply writes; nothing was written"
        );
    }
    let mut out = Bundles {
        checked,
        note,
        ..Bundles::default()
    };
    for (write, legacy) in sealed.into_iter().flatten() {
        out.legacy.extend(legacy);
        out.writes.push(write);
    }
    Ok(out)
}

/// One account of step 4c: the bundle to write and the users' own seed
/// files it takes in.
#[allow(clippy::too_many_arguments)]
fn seal_bundle(
    ws: &Workspace,
    vault: &Vault,
    a: &plan::vault::AccountUsers,
    change: Option<&plan::vault::BundleChange>,
    reseal: &std::collections::BTreeSet<&str>,
    ids: Option<&Identities>,
    generated: &std::sync::Mutex<&mut HashMap<String, KeyPair>>,
    recipients: &Recipients,
    checked: &Remembered,
) -> Result<Option<(BundleWrite, Vec<String>)>> {
    let account = a
        .public_key
        .clone()
        .ok_or_else(|| anyhow!("{} has no key after step 1", a.account))?;
    let ids = || ids.ok_or_else(|| anyhow!("no identity loaded"));
    // What holds the account's users' seeds today, in one map: its bundle,
    // the bundle of its replaced key, users' own seed files. Lines read
    // from a bundle stay as they were read (see `keys::bundle` on why a
    // line only carried over is not derived), each checked against its key
    // before the bundle is sealed again (in parallel): apply does not use a
    // kept user's seed, but re-sealing a line that holds another key's seed
    // would carry a branch's damage forward silently; refused here, before
    // any write, naming the bundle and line. The exact bytes of a bundle an
    // earlier apply of this user sealed were checked then.
    let open = |key: &str| -> Result<Option<(keys::UserSeeds, verified::Digest)>> {
        let opened = vault.open_bundle_digest(key, ids()?)?;
        if let Some((seeds, digest)) = &opened {
            if !checked.contains(digest) {
                seeds.check_all()?;
            }
        }
        Ok(opened)
    };
    let mut opened_digests = Vec::new();
    let mut seeds = keys::UserSeeds::new();
    let mut current: Option<Vec<String>> = None;
    if ws.bundles.contains_key(&account) {
        if let Some((opened, digest)) = open(&account)? {
            current = Some(opened.keys().map(str::to_string).collect());
            seeds = opened;
            opened_digests.push(digest);
        }
    }
    let from = change.and_then(|c| c.from.clone());
    if let Some(from) = &from {
        if let Some((mut opened, digest)) = open(from)? {
            opened_digests.push(digest);
            for k in opened.keys().map(str::to_string).collect::<Vec<_>>() {
                if let Some(line) = opened.take_line(&k) {
                    seeds.insert_line(line);
                }
            }
        }
    }
    let legacy: Vec<String> = change.map(|c| c.legacy.clone()).unwrap_or_default();
    for public in &legacy {
        let kp = vault
            .get(public, ids()?)
            .with_context(|| format!("reading the seed file {public}{}", keys::vault_suffix()))?;
        seeds.insert(kp);
    }
    // The users the new lock binds: each new key pair joins; every other
    // user's seed must be there.
    let mut kept: std::collections::HashSet<&str> =
        std::collections::HashSet::with_capacity(a.users.len());
    let mut new_pairs = Vec::new();
    for u in &a.users {
        let public = u
            .public_key
            .as_deref()
            .ok_or_else(|| anyhow!("{} has no key after step 1", u.address))?;
        kept.insert(public);
        if let Some(kp) = generated.lock().ok().and_then(|mut g| g.remove(public)) {
            new_pairs.push(kp);
        } else if !seeds.contains(public) {
            bail!(
                "the seed of {} ({public}) is in neither the bundle {account}{} nor a seed file of its own\n  = help: restore the bundle from git history, or rotate the key by changing its label in the manifest (its JWT is re-issued)",
                u.address,
                keys::BUNDLE_SUFFIX
            );
        }
    }
    // Seeds of users leaving it: out of the map for the bundle written
    // after the store (step 7a), back in for the one written now.
    let leaving: Vec<String> = seeds
        .keys()
        .filter(|k| !kept.contains(k))
        .map(str::to_string)
        .collect();
    let leaving: Vec<keys::SeedLine> = leaving.iter().filter_map(|k| seeds.take_line(k)).collect();
    for kp in new_pairs {
        seeds.insert(kp);
    }
    let only_reseal = reseal.contains(account.as_str());
    if seeds.is_empty() && leaving.is_empty() && current.is_none() && from.is_none() {
        return Ok(None);
    }
    // Seeds of users leaving it stay in it until the store is written (a
    // JWT on disk may still name them): the bundle without them is written
    // in step 7a.
    let late = if leaving.is_empty() {
        None
    } else {
        let keys: Vec<String> = seeds.keys().map(str::to_string).collect();
        Some((keys::seal_bundle(&account, &seeds, recipients)?, keys))
    };
    for line in leaving {
        seeds.insert_line(line);
    }
    let keys: Vec<String> = seeds.keys().map(str::to_string).collect();
    let same = current.as_ref() == Some(&keys);
    let armored = if same && from.is_none() && !only_reseal {
        // The right seeds already: sealing again would only change bytes.
        None
    } else {
        Some(keys::seal_bundle(&account, &seeds, recipients)?)
    };
    let write = BundleWrite {
        account,
        armored,
        keys,
        only_reseal: same && from.is_none() && late.is_none(),
        late,
        opened: opened_digests,
    };
    Ok(Some((write, legacy)))
}

/// After step 7a, with every bundle written durable: the cache of checked
/// bundles learns the exact bytes of each bundle this apply left in the
/// vault (its every line was checked or generated before it was sealed)
/// and forgets those they replaced. `Ok(false)` when nothing changed.
fn remember_bundles(bundles: &Bundles) -> Result<bool, String> {
    let Some((cache, remembered)) = &bundles.checked else {
        return Ok(false);
    };
    let mut replaced = Vec::new();
    let mut written = Vec::new();
    for w in &bundles.writes {
        let last = w.late.as_ref().map(|(a, _)| a).or(w.armored.as_ref());
        if let Some(bytes) = last {
            replaced.extend(&w.opened);
            written.push(verified::digest_bytes(bytes));
        }
    }
    replaced.sort_unstable();
    let mut digests: Vec<verified::Digest> = remembered
        .iter()
        .filter(|d| replaced.binary_search(d).is_err())
        .copied()
        .collect();
    // Bundles replaced elsewhere (a pull) leave digests behind: bounded.
    if digests.len() + written.len() > verified::MAX_DIGESTS as usize {
        digests.clear();
    }
    digests.extend(written);
    cache.save(&digests)
}

/// Step 5, in the `seeds` batch: the bundles sealed in step 4c (and their
/// indexes), durable before the lock or any JWT names a user key whose
/// seed they hold. Returns how many bundles change.
fn write_bundles(
    ws: &Workspace,
    bundles: &Bundles,
    batch: &mut Batch,
    report: &mut Report,
) -> Result<usize> {
    let vault = Vault::new(&ws.vault_dir);
    let mut n = 0;
    for w in &bundles.writes {
        if vault.stage_bundle(&w.account, w.armored.as_deref(), &w.keys, batch)? {
            if w.only_reseal {
                report.seeds_resealed += 1;
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Step 4b, reads the vault, writes nothing. Opens every seed the plan
/// re-seals (sealed to another recipient set than `secrets.recipients`)
/// and encrypts it again to the declared recipients, in memory: a missing
/// identity or a seed it cannot open stops apply before its first write.
fn reseal_in_memory(
    ws: &Workspace,
    plan: &Plan,
    identities: &IdentitySources,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<(String, Vec<u8>)>> {
    if plan.vault.reseal.iter().all(|r| r.bundle) {
        return Ok(Vec::new());
    }
    let recipients = Recipients::parse(&ws.loaded.manifest.secrets.recipients)?;
    progress("Re-sealing seeds to secrets.recipients…");
    let ids = Identities::load(identities)
        .context("apply must open the seeds it re-seals to secrets.recipients")?;
    let vault = Vault::new(&ws.vault_dir);
    plan.vault
        .reseal
        .iter()
        // Bundles are re-sealed with the users' changes (step 4c).
        .filter(|r| !r.bundle)
        .map(|r| {
            vault
                .sealed_again(&r.public_key, &ids, &recipients)
                .map(|armored| (r.public_key.clone(), armored))
                .with_context(|| format!("re-sealing the seed of {}", r.address))
        })
        .collect()
}

/// Step 5b. Writes the seeds re-sealed in step 4b over their old files
/// (same seeds, other recipients).
fn write_resealed(
    ws: &Workspace,
    resealed: &[(String, Vec<u8>)],
    batch: &mut Batch,
    report: &mut Report,
) -> Result<()> {
    let vault = Vault::new(&ws.vault_dir);
    for (public, armored) in resealed {
        if vault.stage_replace(public, armored, batch)? {
            report.seeds_resealed += 1;
        }
    }
    Ok(())
}

/// Step 7a, the last file step. Rewrites the bundles that still hold the
/// seeds of users that left them, without those seeds; removes the seed
/// files (and bundles) no lock entry the manifest keeps names (retired by a
/// rotation or deletion, or left by an interrupted apply), and the users'
/// own seed files whose seeds moved into a bundle: every JWT they signed or
/// named was re-issued or deleted in step 7, so nothing depends on them.
fn remove_orphans(
    ws: &Workspace,
    plan: &Plan,
    lock: &Lock,
    bundles: &Bundles,
    report: &mut Report,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let vault = Vault::new(&ws.vault_dir);
    // Bundles without the seeds of the users that left: no JWT on disk
    // names those keys any more.
    // The bundles first, their indexes only once the bundles are durable:
    // an index that got ahead of its bundle would hide the leavers' seeds
    // from every later plan (it would no longer list them), so they would
    // stay sealed in the bundle for good. Behind, it only makes the next
    // plan rewrite the bundle again.
    let late = || {
        bundles
            .writes
            .iter()
            .filter_map(|w| Some((w, w.late.as_ref()?)))
    };
    let mut batch = Batch::for_phase("tidy");
    for (w, (armored, _)) in late() {
        vault.stage_bundle_file(&w.account, armored, &mut batch)?;
    }
    batch
        .commit()
        .context("removing the seeds of users that left from their bundles")?;
    let mut batch = Batch::for_phase("tidy-index");
    for (w, (_, keys)) in late() {
        vault.stage_bundle_index(&w.account, keys, &mut batch)?;
    }
    batch
        .commit()
        .context("writing the indexes of the bundles users left")?;
    for orphan in &plan.vault.orphans {
        let public = &orphan.public_key;
        // The plan was checked against this workspace; the new lock is the
        // last word all the same.
        if lock.iter().any(|(_, k)| k == public) {
            bail!("the plan removes the seed of {public}, which the new lock still names");
        }
        let removed = if orphan.bundle {
            vault.remove_bundle(public)?
        } else {
            vault.remove(public)?
        };
        if removed {
            report.seeds_removed += 1;
            progress(&format!("- {} removed from the vault", orphan.file()));
        }
    }
    // Users' own seed files whose seeds are now in their account's bundle.
    for public in &bundles.legacy {
        if vault.remove(public)? {
            report.seeds_removed += 1;
            progress(&format!(
                "- {public}{} moved into its account's bundle",
                keys::vault_suffix()
            ));
        }
    }
    Ok(())
}

/// Step 6, one batch. Writes the lock built in memory (bindings and the
/// revocation record), after the seeds of its new keys are durable and
/// before any JWT that names them; unchanged bytes are not rewritten.
fn write_lock(ws: &Workspace, lock: &Lock, report: &mut Report) -> Result<()> {
    let mut batch = Batch::for_phase("lock");
    report.lock_changed = lock.stage(&ws.lock_path, &mut batch)?;
    batch
        .commit()
        .with_context(|| format!("writing {}", ws.lock_path.display()))?;
    Ok(())
}

/// Step 7, the last write, one batch. Writes the JWTs signed in step 3
/// (each only when its bytes change) and deletes those of deleted objects;
/// once they are all durable, says what changed, in plan order.
fn write_store(
    ws: &Workspace,
    plan: &Plan,
    tokens: &BTreeMap<ObjectId, String>,
    report: &mut Report,
    progress: &mut dyn Progress,
) -> Result<()> {
    // Thousands of re-issued JWTs are rewritten in place behind a journal
    // (`crate::journal`): no new inode and no rename each.
    let mut batch = Batch::for_phase("store").journaled(&ws.loaded.base_dir());
    // With the token read from each file (under the run lock): a file
    // whose new token differs is not read again to compare.
    let writes: Vec<(&ObjectId, &str, Option<&str>)> = plan
        .actions
        .iter()
        .filter(|a| a.action != ActionKind::Delete)
        .map(|a| {
            let was = ws.existing.get(&a.id).map(|e| &*e.token);
            (&a.id, tokens[&a.id].as_str(), was)
        })
        .collect();
    progress.start("Writing JWTs", writes.len());
    let mut written = ws
        .store
        .stage_writes(&writes, &mut batch, &mut |n| progress.inc(n))?
        .into_iter();
    progress.finish();
    let mut changed = Vec::with_capacity(plan.actions.len());
    for action in &plan.actions {
        changed.push(match action.action {
            ActionKind::Delete => ws.store.stage_remove(&action.id, &mut batch)?,
            _ => written.next().expect("one per write"),
        });
    }
    batch.commit().context("writing the store")?;
    for (action, _) in plan.actions.iter().zip(changed).filter(|(_, c)| *c) {
        match action.action {
            ActionKind::Delete => {
                report.jwts_deleted += 1;
                progress.line(&format!("- {} deleted", action.address));
            }
            kind => {
                report.jwts_written += 1;
                progress.line(&format!(
                    "{} {} {}",
                    kind.symbol(),
                    action.address,
                    past_tense(kind)
                ));
            }
        }
    }
    Ok(())
}

/// Signs the activation token `act` describes, issued at `iat`.
fn activation(
    act: &ExpectedActivation,
    iat: i64,
    pairs: &HashMap<String, KeyPair>,
) -> Result<String> {
    let importer = act
        .importer
        .public
        .clone()
        .ok_or_else(|| anyhow!("the importer has no key yet"))?;
    let exporter = act
        .exporter
        .public
        .clone()
        .ok_or_else(|| anyhow!("the exporter has no key yet"))?;
    let signer = &pairs[act.signer.public.as_ref().expect("unlocked")];
    let mut c = claims::ActivationClaims::new(importer);
    c.data.name = act.subject.clone();
    c.data.iat = iat;
    c.nats.subject = act.subject.clone();
    c.nats.kind = Some(serde_json::from_value(Value::String(act.kind.clone()))?);
    if signer.public_key() != exporter {
        c.nats.issuer_account = exporter;
    }
    Ok(claims::encode(&mut c, signer)?)
}

fn past_tense(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Create => "created",
        ActionKind::Update => "updated",
        ActionKind::Reissue => "re-issued",
        ActionKind::Replace => "replaced",
        ActionKind::Delete => "deleted",
    }
}

/// Signs the desired claims of `want` as issued at `iat`, with
/// `activations[i]` as the token of `want.activations[i]` (in the import
/// it names), refusing claims the nats-io/jwt library would reject and
/// claims that still name a key apply has not generated.
pub fn sign(
    want: &DesiredObject,
    iat: i64,
    activations: &[String],
    signer: &KeyPair,
) -> Result<String> {
    let ungenerated = [&want.subject, &*want.signer]
        .into_iter()
        .filter(|k| k.public.is_none())
        .map(|k| k.address.as_str())
        .chain(want.new_keys.iter().map(String::as_str))
        .next();
    if let Some(addr) = ungenerated {
        bail!("the claims name key {addr}, which has not been generated");
    }
    if activations.len() != want.activations.len() {
        bail!(
            "{} activation tokens for {} imports that need one",
            activations.len(),
            want.activations.len()
        );
    }
    match &want.claims {
        DesiredClaims::Operator(c) => sign_typed(c, want.valid_for, iat, signer),
        DesiredClaims::Account(c) => {
            let mut c = c.clone();
            for (act, token) in want.activations.iter().zip(activations) {
                let slot = c
                    .nats
                    .imports
                    .get_mut(act.import)
                    .filter(|i| i.subject == act.subject)
                    .ok_or_else(|| {
                        anyhow!("no import of {} to hold its activation", act.subject)
                    })?;
                slot.token.clone_from(token);
            }
            sign_typed(&c, want.valid_for, iat, signer)
        }
        DesiredClaims::User(c) => sign_typed(&c.claims(), want.valid_for, iat, signer),
    }
}

fn sign_typed<N: ClaimPayload + Clone>(
    claims: &Claims<N>,
    valid_for: Option<i64>,
    iat: i64,
    signer: &KeyPair,
) -> Result<String>
where
    Claims<N>: Validate,
{
    let mut c = claims.clone();
    c.data.iat = iat;
    if let Some(v) = valid_for {
        c.data.exp = iat + v;
    }
    let issues = c.validate();
    if !issues.is_empty() {
        let list: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        bail!("the claims would be rejected by NATS: {}", list.join("; "));
    }
    Ok(claims::encode(&mut c, signer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every help of a deploy error that suggests `--no-push` (right
    /// before the store is written) loses that suggestion after it.
    #[test]
    fn after_the_store_is_written_no_help_suggests_no_push() {
        let report = Report {
            jwts_written: 1,
            ..Report::default()
        };
        for (error, kept) in [
            (
                "cannot connect\n  = help: is nats-server running there and reachable? Check `operators.O.resolver.urls` or --push, or apply with --no-push to write the store only",
                "  = help: is nats-server running there and reachable? Check `operators.O.resolver.urls` or --push",
            ),
            (
                "no resolver\n  = help: give the servers a full resolver, e.g. with `natsform server-config`, or apply with --no-push",
                "  = help: give the servers a full resolver, e.g. with `natsform server-config`",
            ),
            (
                "no signing key\n  = help: add one, e.g. `[x]`, apply with --no-push, or pass --creds FILE",
                "  = help: add one, e.g. `[x]`, or pass --creds FILE",
            ),
            (
                "odd\n  = help: use --no-push",
                "  = help: fix the cause above, then run `natsform apply` again",
            ),
        ] {
            let e = store_written_not_deployed(&anyhow!("{error}"), &report);
            let text = e.to_string();
            assert!(!text.contains("--no-push"), "{text}");
            assert!(text.starts_with("the store is written (1 JWT written, 0 deleted), but deploying it to the servers failed: "), "{text}");
            assert!(text.ends_with(kept), "{text}");
        }
    }
}
