//! The planner: desired state (manifest + lock) against the store, giving
//! one action per object with its typed reasons and the claims before and
//! after, as data. Views ([`views`]) turn a plan into text, JSON or
//! Markdown.
//!
//! Pure: data in, data out. No file system, no clock, no randomness — the
//! caller reads the store and passes what it found.
//!
//! The cascade of a rotation is not special-cased: every object knows the
//! key that must sign it and the keys its parent trusts, so when a key
//! disappears (or stops being first in its list) everything it signed is
//! re-issued by the key that now signs for that role.

mod actions;
pub mod desired;
pub mod effective;
mod effects;
pub mod existing;
mod expiry;
pub mod keyref;
pub mod reasons;
pub mod render_claims;
pub mod revocations;
pub mod saved;
pub mod views;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde_json::Value;

pub use desired::{desired, required_keys, DesiredObject};
pub use existing::Existing;
pub use keyref::{KeyBook, KeyRef};
use render_claims::KeyNames;

pub use actions::{Action, ActionKind, Claims, Effect, EffectivePermissions};
pub use reasons::{Blocker, LockRecord, Reason, Warning};

use crate::keys::Revocations;
use crate::manifest::Manifest;
use crate::tree::{ObjectId, ObjectKind};

/// The whole plan: data only; [`views`] render it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Users whose effective permissions change without a new JWT.
    pub effects: Vec<Effect>,
    /// Key addresses apply will generate.
    pub new_keys: Vec<String>,
    /// Deletions that need `--allow-destroy`: operators and system accounts.
    pub protected_deletes: Vec<ObjectId>,
    /// Things a reviewer must know that apply cannot fix.
    pub warnings: Vec<Warning>,
    /// Changes to the revocation record in `natsform.lock` that no JWT
    /// action carries (e.g. a lock that lacks what the store holds).
    pub lock_records: Vec<LockRecord>,
    /// Problems apply refuses to work around (a seed the lock names is
    /// missing or damaged); each says how to fix it.
    pub blockers: Vec<Blocker>,
    /// Public key → key address, for the views to annotate keys in claims.
    /// Empty when there is nothing to render.
    pub key_names: BTreeMap<String, String>,
}

impl Plan {
    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.new_keys.is_empty() && self.lock_records.is_empty()
    }

    /// How many actions of `kind` the plan holds.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.action == kind).count()
    }
}

/// Desired claims of every object, with reconciled revocations.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub objects: BTreeMap<ObjectId, DesiredObject>,
    /// Why an account's revocations change, per account.
    pub revocation_reasons: BTreeMap<ObjectId, Vec<Reason>>,
    /// Every desired account's revocations, as the lock must record them.
    pub revocations: Revocations,
}

/// Computes the desired state: claims from the manifest and key bindings,
/// plus the revocations that deleted users require.
pub fn desired_state(
    manifest: &Manifest,
    keys: &KeyBook,
    existing: &BTreeMap<ObjectId, Existing>,
    recorded: &Revocations,
) -> DesiredState {
    complete_state(desired(manifest, keys), manifest, keys, existing, recorded)
}

/// [`desired_state`] from objects already computed by [`desired`] with the
/// same manifest and keys: adds activations and reconciled revocations.
pub fn complete_state(
    mut objects: BTreeMap<ObjectId, DesiredObject>,
    manifest: &Manifest,
    keys: &KeyBook,
    existing: &BTreeMap<ObjectId, Existing>,
    recorded: &Revocations,
) -> DesiredState {
    for need in desired::activation::activations_needed(manifest) {
        let (Some(importer), Some(exporter)) =
            (objects.get(&need.importer), objects.get(&need.exporter))
        else {
            continue;
        };
        let signer = activation_signer(manifest, keys, &need.exporter)
            .unwrap_or_else(|| exporter.subject.clone());
        let expected = keyref::ExpectedActivation {
            subject: need.subject.clone(),
            kind: need.kind.as_str().to_string(),
            importer: importer.subject.clone(),
            exporter: exporter.subject.clone(),
            signer,
        };
        if let Some(o) = objects.get_mut(&need.importer) {
            o.activations.push(expected);
        }
    }
    let mut revocation_reasons = BTreeMap::new();
    let mut all_revocations = Revocations::new();
    for (id, revs) in revocations::reconcile(&objects, existing, recorded) {
        if !revs.entries.is_empty() {
            all_revocations.insert(id.address(), revs.entries.clone());
        }
        if let Some(o) = objects.get_mut(&id) {
            let mut claims = o.claims.value();
            revocations::apply_to(&mut claims, &revs.entries);
            o.claims = desired::WireClaims::new(&claims);
        }
        if !revs.reasons.is_empty() {
            revocation_reasons.insert(id, revs.reasons);
        }
    }
    DesiredState {
        objects,
        revocation_reasons,
        revocations: all_revocations,
    }
}

/// Under strict signing key usage the exporter's identity key is not a
/// trusted signer, so its first signing key (by role name) signs
/// activations; otherwise the identity key does, as nsc does.
fn activation_signer(manifest: &Manifest, keys: &KeyBook, exporter: &ObjectId) -> Option<KeyRef> {
    let op = manifest.operators.get(&exporter.operator)?;
    if !op.strict_signing_key_usage {
        return None;
    }
    let acc_name = exporter.account.as_deref()?;
    let (role, sk) = op.accounts.get(acc_name)?.signing_keys.iter().next()?;
    let address = crate::manifest::address::key(
        &crate::manifest::address::signing_key(&exporter.operator, acc_name, role),
        sk.keys.first()?,
    );
    Some(KeyRef {
        public: keys.get(&address).cloned(),
        address,
        kind: crate::keys::KeyKind::Account,
    })
}

/// Everything the planner looks at.
pub struct Inputs<'a> {
    pub state: &'a DesiredState,
    pub existing: &'a BTreeMap<ObjectId, Existing>,
    /// The lock's bindings (including keys the manifest no longer names).
    pub keys: &'a KeyBook,
    /// Key addresses the manifest names.
    pub required: &'a BTreeSet<String>,
    /// The current time (unix seconds), for expiry.
    pub now: i64,
    /// JWTs expiring within this many seconds are re-issued (relative
    /// expiry) or warned about (fixed expiry).
    pub reissue_before: i64,
    /// The revocations `natsform.lock` records.
    pub recorded: &'a Revocations,
    /// Key addresses whose seed file is missing or damaged, or whose key is
    /// bound elsewhere too, with the problem and its fix (found by the
    /// caller, which reads the vault).
    pub seed_problems: &'a BTreeMap<String, String>,
}

/// Computes the plan. Objects are planned in parallel; the result is in
/// [`ObjectId`] order, so it does not depend on scheduling.
pub fn plan(inputs: &Inputs) -> Plan {
    let names: KeyNames = inputs
        .keys
        .iter()
        .map(|(addr, public)| (public.as_str(), addr.as_str()))
        .collect();
    // Accounts whose claims change: effective permissions can only change
    // under them, and their actions reuse the answer.
    let changed_accounts: BTreeSet<&ObjectId> = inputs
        .state
        .objects
        .par_iter()
        .filter(|(id, want)| {
            id.kind() == ObjectKind::Account
                && !inputs
                    .existing
                    .get(id)
                    .and_then(|e| e.decoded.as_ref().ok())
                    .is_some_and(|d| d.holds(want))
        })
        .map(|(id, _)| id)
        .collect();
    let ctx = Ctx {
        inputs,
        names,
        changed_accounts,
    };
    let ids: Vec<&ObjectId> = inputs
        .state
        .objects
        .keys()
        .chain(inputs.existing.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Only objects with something to do are kept (rayon keeps the order).
    let outcomes: Vec<Action> = ids.par_iter().filter_map(|id| ctx.object(id)).collect();
    drop(ids);
    let mut plan = Plan {
        actions: outcomes,
        ..Plan::default()
    };
    // Effective permissions can change only under an account that changes;
    // one account at a time, so its parsed claims are held only meanwhile.
    let acted: BTreeSet<&ObjectId> = plan.actions.iter().map(|a| &a.id).collect();
    plan.effects = ctx
        .changed_accounts
        .par_iter()
        .flat_map_iter(|acc| ctx.effects_of(acc, &acted))
        .collect();
    let mut new_keys = BTreeSet::new();
    for d in inputs.state.objects.values() {
        for k in [&d.subject, &d.signer] {
            if k.public.is_none() {
                new_keys.insert(k.address.clone());
            }
        }
        if d.id.kind() != ObjectKind::User {
            new_keys.extend(existing::placeholders_in(&d.claims.value()));
        }
    }
    plan.new_keys = new_keys.into_iter().collect();
    plan.protected_deletes = protected_deletes(&plan.actions, inputs.existing);
    plan.warnings = expiry::fixed_expiry_warnings(inputs);
    plan.lock_records = lock_records(inputs, &acted);
    plan.blockers = seed_blockers(inputs);
    // The views annotate keys in the claims they render; a plan with
    // nothing to render needs no names.
    if !plan.actions.is_empty() || !plan.effects.is_empty() {
        plan.key_names = inputs
            .keys
            .iter()
            .map(|(addr, public)| (public.clone(), addr.clone()))
            .collect();
    }
    plan
}

/// Revocation records the lock gains or drops where no account action
/// explains it (an account action's reasons already do).
fn lock_records(inputs: &Inputs, acted: &BTreeSet<&ObjectId>) -> Vec<LockRecord> {
    let want = &inputs.state.revocations;
    let have = inputs.recorded;
    let acted_accounts: BTreeSet<String> = acted
        .iter()
        .filter(|id| id.kind() == ObjectKind::Account)
        .map(|id| id.address())
        .collect();
    let mut out = Vec::new();
    for account in want.keys().chain(have.keys()).collect::<BTreeSet<_>>() {
        let (w, h) = (want.get(account), have.get(account));
        if w == h || acted_accounts.contains(account) {
            continue;
        }
        let account = account.clone();
        out.push(match w {
            Some(w) => {
                let new = w
                    .keys()
                    .filter(|k| h.is_none_or(|h| !h.contains_key(*k)))
                    .count();
                LockRecord::Records { account, new }
            }
            None => LockRecord::Drops { account },
        });
    }
    out
}

/// A seed the lock names but the vault lacks (or holds damaged) would make
/// apply fail halfway or issue a JWT nobody can use; a key bound to two
/// objects would give two JWTs one identity. Apply refuses both.
fn seed_blockers(inputs: &Inputs) -> Vec<Blocker> {
    inputs
        .seed_problems
        .iter()
        .filter(|(addr, _)| inputs.required.contains(*addr))
        .map(|(addr, problem)| Blocker::Seed {
            address: addr.clone(),
            problem: problem.clone(),
        })
        .collect()
}

/// What planning one object needs besides the object: shared by every
/// object planned in parallel.
struct Ctx<'a> {
    inputs: &'a Inputs<'a>,
    names: KeyNames<'a>,
    /// Accounts whose stored JWT does not hold their desired claims.
    changed_accounts: BTreeSet<&'a ObjectId>,
}

fn parent_address(id: &ObjectId) -> String {
    match id.kind() {
        ObjectKind::Operator => id.address(),
        ObjectKind::Account => ObjectId::operator(&id.operator).address(),
        ObjectKind::User => id.account_id().map(|a| a.address()).unwrap_or_default(),
    }
}

/// Deletions of operators and of the system account an operator JWT names.
fn protected_deletes(actions: &[Action], existing: &BTreeMap<ObjectId, Existing>) -> Vec<ObjectId> {
    let deleted: BTreeSet<&ObjectId> = actions
        .iter()
        .filter(|a| a.action == ActionKind::Delete)
        .map(|a| &a.id)
        .collect();
    let mut out = Vec::new();
    for id in deleted {
        match id.kind() {
            ObjectKind::Operator => out.push(id.clone()),
            ObjectKind::Account => {
                let op = existing
                    .get(&ObjectId::operator(&id.operator))
                    .and_then(|e| e.decoded.as_ref().ok());
                let acc = existing.get(id).and_then(|e| e.decoded.as_ref().ok());
                if let (Some(op), Some(acc)) = (op, acc) {
                    if op
                        .value()
                        .pointer("/nats/system_account")
                        .and_then(Value::as_str)
                        == Some(acc.subject.as_str())
                    {
                        out.push(id.clone());
                    }
                }
            }
            ObjectKind::User => {}
        }
    }
    out
}

/// A public key shortened for prose: `ABCDEFGHIJKL…`.
pub fn short(key: &str) -> String {
    if key.len() > 12 {
        format!("{}…", &key[..12])
    } else {
        key.to_string()
    }
}
