//! Executing a plan, as a sequence of small steps. The first four work in
//! memory only (step 2 reads the vault); the next three write, each file atomically and only when its
//! bytes change (`fsutil::write_atomic`).
//!
//! | step | function | touches |
//! |---|---|---|
//! | 0. refuse a blocked plan | `refuse_blockers` | nothing |
//! | 1. generate new keys | `generate_keys` | memory |
//! | 2. unlock the signers | `unlock_signers` | reads the vault |
//! | 3. sign every JWT | `sign_all` | memory |
//! | 4. build the new lock | `new_lock` | memory |
//! | 5. write the new seeds | `write_seeds` | `vault/` |
//! | 6. write the lock | `write_lock` | `natsform.lock` |
//! | 7. write and delete JWTs | `write_store` | `store/` |
//! | 8. deploy to NATS servers | not yet | servers |
//!
//! Two guarantees follow from the order, and [`apply`] is where they are
//! kept:
//!
//! - **Nothing is written when anything fails before step 5**: a missing
//!   identity, a damaged seed, claims NATS would reject, a plan out of date
//!   with the manifest. Every JWT (and activation token) is signed and the
//!   lock's new content built before the first write.
//! - **Seeds, then the lock, then JWTs.** An interruption at any point
//!   leaves a state the next plan converges from: a seed is on disk
//!   (encrypted) before the lock or any JWT names its key, so no JWT ever
//!   depends on a key that was lost.
//!
//! Step 8 is where pushing account JWTs to live servers will go: after the
//! store is written, so that a server never holds a JWT the repository does
//! not; a push that fails leaves the store written, for the next run to
//! push again.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::claims::{self, ClaimPayload, Claims, Validate};
use crate::keys::{
    self, Identities, IdentitySources, KeyKind, KeyPair, Lock, Recipients, Revocations, Vault,
};
use crate::plan::keyref::ExpectedActivation;
use crate::plan::{self, Action, ActionKind, DesiredClaims, DesiredObject, KeyBook, KeyRef, Plan};
use crate::tree::ObjectId;
use crate::workspace::Workspace;

/// What apply did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub keys_generated: usize,
    pub jwts_written: usize,
    pub jwts_deleted: usize,
    pub lock_changed: bool,
}

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
    refuse_blockers(plan)?;
    let required = plan::required_keys(&ws.loaded.manifest);

    // In memory: every step that can refuse runs before the first write.
    let mut keys = generate_keys(ws, plan, &required)?; // 1
    let state = ws.desired(&keys.book);
    let desired = &state.objects;
    unlock_signers(ws, plan, desired, &mut keys.pairs, identities, progress)?; // 2
    let tokens = sign_all(ws, plan, desired, &keys.pairs, now)?; // 3
    let lock = new_lock(&keys.book, &state.revocations)?; // 4

    // On disk: seeds, then the lock, then JWTs, in this order and no other.
    let mut report = Report::default();
    write_seeds(ws, &keys, &mut report, progress)?; // 5
    write_lock(ws, &lock, &mut report)?; // 6
    write_store(ws, plan, &tokens, &mut report, progress)?; // 7

    // 8. Deploy to NATS servers: not yet. It goes here, after the store is
    // written (see the module documentation).
    Ok(report)
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

/// Step 1, memory only. Generates a key pair for every new key the plan
/// names (bring-your-own keys are bound, never generated) and builds the
/// key book the lock will hold: the lock's bindings the manifest still
/// requires, plus the new ones.
///
/// Fails, before anything is written, when the plan names a key the
/// manifest does not, or the manifest's recipients do not parse.
fn generate_keys(
    ws: &Workspace,
    plan: &Plan,
    required: &BTreeMap<String, (KeyKind, Option<String>)>,
) -> Result<Keys> {
    let mut book: KeyBook = ws.key_book();
    // Bindings the manifest no longer names leave the lock; their seeds stay
    // in the vault, since a JWT may still depend on them until re-issued.
    book.retain(|addr, _| required.contains_key(addr));
    let mut pairs: HashMap<String, KeyPair> = HashMap::new();
    let mut generated: Vec<(String, String)> = Vec::new();
    for addr in &plan.new_keys {
        let Some((kind, byo)) = required.get(addr) else {
            bail!("the plan names key {addr}, which the manifest does not")
        };
        if let Some(public) = byo {
            book.insert(addr.clone(), public.clone());
            continue;
        }
        let kp = keys::generate(*kind);
        let public = kp.public_key();
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
    desired: &BTreeMap<ObjectId, DesiredObject>,
    pairs: &HashMap<String, KeyPair>,
    now: i64,
) -> Result<BTreeMap<ObjectId, String>> {
    let mut tokens: BTreeMap<ObjectId, String> = BTreeMap::new();
    for action in &plan.actions {
        if action.action == ActionKind::Delete {
            continue;
        }
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
        let token = sign(want, iat, &activations, signer)
            .with_context(|| format!("signing {}", action.address))?;
        tokens.insert(action.id.clone(), token);
    }
    Ok(tokens)
}

/// Step 4, memory only. The lock apply will write: every binding of
/// `book`, and the revocation record (the second record of every
/// revocation, beside the account JWTs).
fn new_lock(book: &KeyBook, revocations: &Revocations) -> Result<Lock> {
    let mut lock = Lock::new();
    for (addr, public) in book {
        lock.insert(addr.clone(), public.clone())?;
    }
    lock.set_revocations(revocations.clone());
    Ok(lock)
}

/// Step 5, the first write. Stores the seed of every key generated in step
/// 1, age-encrypted to the manifest's recipients, before the lock or any
/// JWT names its key. The vault never overwrites a seed.
fn write_seeds(
    ws: &Workspace,
    keys: &Keys,
    report: &mut Report,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let Some(recipients) = &keys.recipients else {
        return Ok(());
    };
    let vault = Vault::new(&ws.vault_dir);
    for (addr, public) in &keys.generated {
        vault
            .put(&keys.pairs[public], recipients)
            .with_context(|| format!("storing the seed of {addr}"))?;
        report.keys_generated += 1;
    }
    progress(&format!(
        "Stored {} new seed{} in {}",
        keys.generated.len(),
        if keys.generated.len() == 1 { "" } else { "s" },
        ws.vault_dir.display()
    ));
    Ok(())
}

/// Step 6. Writes the lock built in memory (bindings and the revocation
/// record), after the seeds of its new keys are stored and before any JWT
/// that names them; unchanged bytes are not rewritten.
fn write_lock(ws: &Workspace, lock: &Lock, report: &mut Report) -> Result<()> {
    report.lock_changed = lock.save(&ws.lock_path)?;
    Ok(())
}

/// Step 7, the last write. Writes the JWTs signed in step 3 and deletes
/// those of deleted objects, in plan order, each JWT written only when its
/// bytes change.
fn write_store(
    ws: &Workspace,
    plan: &Plan,
    tokens: &BTreeMap<ObjectId, String>,
    report: &mut Report,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    for action in &plan.actions {
        match action.action {
            ActionKind::Delete => {
                if ws.store.remove(&action.id)? {
                    report.jwts_deleted += 1;
                    progress(&format!("- {} deleted", action.address));
                }
            }
            kind => {
                if ws.store.write(&action.id, &tokens[&action.id])? {
                    report.jwts_written += 1;
                    progress(&format!(
                        "{} {} {}",
                        kind.symbol(),
                        action.address,
                        past_tense(kind)
                    ));
                }
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
