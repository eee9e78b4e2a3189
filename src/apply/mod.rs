//! Executing a plan: decrypt the seeds the plan needs, generate new keys,
//! sign every JWT in memory, and only then write — vault first, then the
//! lock, then the store — each file atomically and only when it changes.
//!
//! An interruption at any point leaves a state the next plan converges
//! from: a seed is on disk (encrypted) before the lock or any JWT names its
//! key, so no JWT ever depends on a key that was lost.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::claims::{self, ClaimPayload, Claims, Validate};
use crate::keys::{self, Identities, IdentitySources, KeyPair, Recipients, Vault};
use crate::plan::keyref::ExpectedActivation;
use crate::plan::{self, ActionKind, KeyBook, KeyRef, Plan};
use crate::tree::{ObjectId, ObjectKind};
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
pub fn apply(
    ws: &Workspace,
    plan: &Plan,
    identities: &IdentitySources,
    now: i64,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
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
    let mut report = Report::default();
    let required = plan::required_keys(&ws.loaded.manifest);
    let vault = Vault::new(&ws.vault_dir);
    let mut book: KeyBook = ws.key_book();
    // Bindings the manifest no longer names leave the lock; their seeds stay
    // in the vault, since a JWT may still depend on them until re-issued.
    book.retain(|addr, _| required.contains_key(addr));

    // 1. Generate new keys in memory.
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
    for (addr, (_, byo)) in &required {
        if let Some(public) = byo {
            book.insert(addr.clone(), public.clone());
        }
    }

    // 2. Sign everything in memory; decrypt only the seeds that sign.
    let state = ws.desired(&book);
    let desired = &state.objects;
    let mut secrets: Option<Identities> = None;
    let mut tokens: BTreeMap<ObjectId, String> = BTreeMap::new();
    for action in &plan.actions {
        if action.action == ActionKind::Delete {
            continue;
        }
        let want = desired.get(&action.id).ok_or_else(|| {
            anyhow!(
                "{}: the plan is out of date with the manifest; run plan again",
                action.address
            )
        })?;
        // The object's signer, and the exporters' keys of its activations.
        let signers =
            std::iter::once(&want.signer).chain(want.activations.iter().map(|a| &a.signer));
        for key in signers {
            unlock(
                key,
                &action.address,
                &mut pairs,
                &mut secrets,
                identities,
                &vault,
                progress,
            )?;
        }
        let signer = &pairs[want.signer.public.as_ref().expect("unlocked above")];
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
                .and_then(|a| plan::revocations::revoked_at(&a.claims.value(), key)),
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
        let mut claims = want.wire_at(iat);
        for act in &want.activations {
            let token = activation(act, iat, &pairs).with_context(|| {
                format!(
                    "{}: issuing the activation for {}",
                    action.address, act.subject
                )
            })?;
            embed_activation(&mut claims, act, &token);
        }
        let token = sign(action.id.kind(), &claims, iat, signer)
            .with_context(|| format!("signing {}", action.address))?;
        tokens.insert(action.id.clone(), token);
    }

    // 3. Write: seeds, then the lock, then JWTs.
    if !generated.is_empty() {
        let recipients = Recipients::parse(&ws.loaded.manifest.secrets.recipients)?;
        for (addr, public) in &generated {
            vault
                .put(&pairs[public], &recipients)
                .with_context(|| format!("storing the seed of {addr}"))?;
            report.keys_generated += 1;
        }
        progress(&format!(
            "Stored {} new seed{} in {}",
            generated.len(),
            if generated.len() == 1 { "" } else { "s" },
            ws.vault_dir.display()
        ));
    }
    let mut lock = keys::Lock::new();
    for (addr, public) in &book {
        lock.insert(addr.clone(), public.clone())?;
    }
    // The second record of every revocation, beside the account JWTs.
    lock.set_revocations(state.revocations.clone());
    report.lock_changed = lock.save(&ws.lock_path)?;
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
    Ok(report)
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

/// Puts `token` where the desired claims hold the activation placeholder.
fn embed_activation(claims: &mut Value, act: &ExpectedActivation, token: &str) {
    let Some(Value::Array(imports)) = claims.pointer_mut("/nats/imports") else {
        return;
    };
    for import in imports {
        let matches = import.get("subject").and_then(Value::as_str) == Some(act.subject.as_str())
            && import.get("type").and_then(Value::as_str) == Some(act.kind.as_str())
            && import.get("token").and_then(Value::as_str)
                == Some(plan::keyref::ACTIVATION_PLACEHOLDER);
        if matches {
            import["token"] = Value::String(token.to_string());
        }
    }
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

/// Signs desired wire claims as the JWT of an object of `kind`, refusing
/// claims the nats-io/jwt library would reject.
pub fn sign(kind: ObjectKind, wire: &Value, iat: i64, signer: &KeyPair) -> Result<String> {
    match kind {
        ObjectKind::Operator => sign_typed::<claims::Operator>(wire, iat, signer),
        ObjectKind::Account => sign_typed::<claims::Account>(wire, iat, signer),
        ObjectKind::User => sign_typed::<claims::User>(wire, iat, signer),
    }
}

fn sign_typed<N: ClaimPayload>(wire: &Value, iat: i64, signer: &KeyPair) -> Result<String>
where
    Claims<N>: Validate,
{
    let mut c: Claims<N> = serde_json::from_value(wire.clone()).context("building claims")?;
    c.data.iat = iat;
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
