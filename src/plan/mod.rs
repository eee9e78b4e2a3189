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
pub(crate) mod effective;
mod effects;
pub mod existing;
mod expiry;
pub(crate) mod keyref;
pub mod live;
mod notices;
pub mod reasons;
pub(crate) mod render_claims;
pub(crate) mod revocations;
pub(crate) mod saved;
mod state;
pub mod vault;
pub mod views;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

pub use desired::{desired, required_keys, DesiredClaims, DesiredObject, RequiredKeys};
pub use existing::Existing;
pub use keyref::{KeyBook, KeyRef};
use render_claims::KeyNames;

pub use actions::{Action, ActionKind, Claims, Effect, EffectivePermissions};
pub use reasons::{Blocker, LockRecord, Reason, Warning};
pub use state::{complete_state, desired_state, DesiredState};

use crate::keys::Revocations;
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
    /// Public key → key address of every key the claims above mention,
    /// for the views to annotate.
    pub key_names: BTreeMap<String, String>,
    /// What the live servers hold against the store, per operator; empty
    /// unless the plan was made with `--live` (or by an apply that pushes).
    pub live: Vec<crate::live::LivePlan>,
    /// What `plan --base` compared (set by the caller after planning);
    /// every view shows it first. `None` for the plan of a working tree.
    pub base: Option<MergeBase>,
    /// Seeds to re-seal to the declared recipients and seeds nothing
    /// refers to (set by the caller, which reads the vault's age headers).
    pub vault: vault::VaultPlan,
}

/// The two sides of `plan --base REF [--head REF]`, as data: the views
/// word them (the text view as the header lines `plan --base` has always
/// printed, the Markdown view after its marker, the JSON view as `base`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeBase {
    /// The manifest's path from the repository root.
    pub manifest: String,
    /// `--head` as given and its commit's short id; `None`: the manifest
    /// of the working tree.
    pub head: Option<Revision>,
    /// `--base` as given and its commit's short id: where the lock, the
    /// store and the vault were read.
    pub base: Revision,
    /// Whether the base holds this manifest's lock.
    pub base_has_lock: bool,
    /// Whether the base holds this manifest's store.
    pub base_has_store: bool,
}

/// A git revision as the user named it, and the commit it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    pub name: String,
    /// The commit's abbreviated id.
    pub commit: String,
}

impl Plan {
    /// Whether applying would change nothing: no action, key or lock
    /// record, and nothing to push to or delete from a live server.
    /// Unmanaged accounts a server holds are information unless the plan
    /// was made with `--prune`.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
            && self.new_keys.is_empty()
            && self.lock_records.is_empty()
            && self.vault.is_empty()
            && !self.live.iter().any(crate::live::LivePlan::has_work)
    }

    /// How many actions of `kind` the plan holds.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.action == kind).count()
    }
}
/// Everything the planner looks at.
pub struct Inputs<'a> {
    pub state: &'a DesiredState,
    pub existing: &'a BTreeMap<ObjectId, Existing>,
    /// The lock's bindings (including keys the manifest no longer names).
    pub keys: &'a KeyBook,
    /// The keys the manifest names ([`required_keys`]).
    pub required: &'a RequiredKeys,
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
    let mut ctx = Ctx {
        inputs,
        names: std::sync::OnceLock::new(),
        changed_accounts,
        accounts: inputs
            .state
            .objects
            .keys()
            .chain(inputs.existing.keys())
            .filter(|id| id.kind() == ObjectKind::Account)
            .map(|id| (id.clone(), AccountValues::default()))
            .collect(),
    };
    let objects = joined(&inputs.state.objects, inputs.existing);
    // Only objects with something to do are kept (rayon keeps the order).
    let outcomes: Vec<Action> = objects
        .par_iter()
        .filter_map(|(id, want, have)| ctx.object(id, *want, *have))
        .collect();
    drop(objects);
    // Parsed account claims were for the actions' users only.
    ctx.accounts.clear();
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
        for k in [&d.subject, &*d.signer] {
            if k.public.is_none() {
                new_keys.insert(k.address.clone());
            }
        }
        new_keys.extend(d.new_keys.iter().cloned());
    }
    plan.new_keys = new_keys.into_iter().collect();
    plan.protected_deletes = notices::protected_deletes(&plan.actions, inputs.existing);
    plan.warnings = expiry::fixed_expiry_warnings(inputs);
    plan.lock_records = notices::lock_records(inputs, &acted);
    plan.blockers = notices::seed_blockers(inputs);
    plan.blockers
        .extend(notices::future_revocation_blockers(inputs));
    // No action and no effect: no claims mention a key (the common
    // no-change plan never builds the map of every key).
    if !plan.actions.is_empty() || !plan.effects.is_empty() {
        plan.key_names = key_names_of(&plan, ctx.names());
    }
    plan
}

/// The addresses of the public keys the plan's claims mention, which the
/// views annotate: only those, not the whole lock (100,000 users' keys).
fn key_names_of(plan: &Plan, names: &KeyNames) -> BTreeMap<String, String> {
    let found = |texts: &mut dyn Iterator<Item = &str>| -> Vec<(String, String)> {
        texts
            .flat_map(|t| t.split('"'))
            .filter(|t| {
                t.len() == 56
                    && t.bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            })
            .filter_map(|t| names.get_key_value(t))
            .map(|(k, a)| (k.to_string(), a.to_string()))
            .collect()
    };
    fn of_claims(c: &Claims) -> impl Iterator<Item = &str> {
        std::iter::once(c.json()).chain(c.effective.iter().map(EffectivePermissions::json))
    }
    let from_actions = plan.actions.par_iter().flat_map_iter(|a| {
        found(
            &mut [&a.before, &a.after]
                .into_iter()
                .flatten()
                .flat_map(of_claims),
        )
    });
    let from_effects = plan.effects.par_iter().flat_map_iter(|e| {
        found(
            &mut [&e.before, &e.after]
                .into_iter()
                .flatten()
                .map(EffectivePermissions::json),
        )
    });
    from_actions
        .chain(from_effects)
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}
/// What planning one object needs besides the object: shared by every
/// object planned in parallel.
struct Ctx<'a> {
    inputs: &'a Inputs<'a>,
    /// Public key → address of every key the lock binds: built on first
    /// use (an action that names a key, or the key names of a plan with
    /// actions), never for a plan with nothing to do.
    names: std::sync::OnceLock<KeyNames<'a>>,
    /// Accounts whose stored JWT does not hold their desired claims.
    changed_accounts: BTreeSet<&'a ObjectId>,
    /// Every account's claims as values, parsed once on first use: the
    /// effective permissions of each of its users with an action read them.
    accounts: BTreeMap<ObjectId, AccountValues>,
}

impl<'a> Ctx<'a> {
    /// Public key → address of every key the lock binds.
    fn names(&self) -> &KeyNames<'a> {
        self.names.get_or_init(|| {
            self.inputs
                .keys
                .iter()
                .map(|(addr, public)| (public.as_str(), addr.as_str()))
                .collect()
        })
    }
}

/// An account's desired and stored claims as JSON values, each parsed on
/// first use.
#[derive(Default)]
struct AccountValues {
    desired: std::sync::OnceLock<serde_json::Value>,
    stored: std::sync::OnceLock<serde_json::Value>,
}

impl AccountValues {
    fn desired(&self, account: &DesiredObject) -> &serde_json::Value {
        self.desired.get_or_init(|| account.claims.value())
    }

    fn stored(&self, account: &existing::DecodedJwt) -> &serde_json::Value {
        self.stored.get_or_init(|| account.value())
    }
}

/// Every id of either map, in order, with what each map holds for it: one
/// walk of both sorted maps.
fn joined<'a>(
    desired: &'a BTreeMap<ObjectId, DesiredObject>,
    existing: &'a BTreeMap<ObjectId, Existing>,
) -> Vec<(
    &'a ObjectId,
    Option<&'a DesiredObject>,
    Option<&'a Existing>,
)> {
    let mut out = Vec::with_capacity(desired.len().max(existing.len()));
    let (mut d, mut e) = (desired.iter().peekable(), existing.iter().peekable());
    loop {
        let next = match (d.peek(), e.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        out.push(match next {
            std::cmp::Ordering::Less => {
                let (id, w) = d.next().expect("peeked");
                (id, Some(w), None)
            }
            std::cmp::Ordering::Greater => {
                let (id, h) = e.next().expect("peeked");
                (id, None, Some(h))
            }
            std::cmp::Ordering::Equal => {
                let (id, w) = d.next().expect("peeked");
                let (_, h) = e.next().expect("peeked");
                (id, Some(w), Some(h))
            }
        });
    }
    out
}

fn parent_address(id: &ObjectId) -> String {
    match id.kind() {
        ObjectKind::Operator => id.address(),
        ObjectKind::Account => ObjectId::operator(&id.operator).address(),
        ObjectKind::User => id.account_id().map(|a| a.address()).unwrap_or_default(),
    }
}
/// A public key shortened for prose: `ABCDEFGHIJKL…`.
pub fn short(key: &str) -> String {
    if key.len() > 12 {
        format!("{}…", &key[..12])
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn joined_walks_both_maps_in_order_pairing_equal_ids() {
        let id = |a: &str, u: Option<&str>| match u {
            Some(u) => ObjectId::user("O", a, u),
            None => ObjectId::account("O", a),
        };
        let ids = [
            id("A", None),
            id("A", Some("u1")),
            id("A", Some("u2")),
            id("B", None),
            id("C", Some("u")),
        ];
        let token: std::sync::Arc<str> = std::sync::Arc::from("x");
        let existing: BTreeMap<ObjectId, Existing> = [&ids[0], &ids[2], &ids[4]]
            .into_iter()
            .map(|i| {
                let e = Existing {
                    token: token.clone(),
                    decoded: Err("test".into()),
                };
                (i.clone(), e)
            })
            .collect();
        // Desired objects are heavy to build: an empty map on one side,
        // then the same ids on the other.
        fn walk<'a>(
            state: &'a BTreeMap<ObjectId, DesiredObject>,
            existing: &'a BTreeMap<ObjectId, Existing>,
        ) -> Vec<(&'a ObjectId, bool, bool)> {
            joined(state, existing)
                .into_iter()
                .map(|(i, w, h)| (i, w.is_some(), h.is_some()))
                .collect()
        }
        let none = BTreeMap::new();
        assert_eq!(
            walk(&none, &existing),
            vec![
                (&ids[0], false, true),
                (&ids[2], false, true),
                (&ids[4], false, true)
            ]
        );
        let state = desired_pairs(&ids[..4]);
        assert_eq!(
            walk(&state, &existing),
            vec![
                (&ids[0], true, true),
                (&ids[1], true, false),
                (&ids[2], true, true),
                (&ids[3], true, false),
                (&ids[4], false, true),
            ]
        );
    }

    /// Desired objects for `ids`, from a manifest that declares them.
    fn desired_pairs(ids: &[ObjectId]) -> BTreeMap<ObjectId, DesiredObject> {
        let mut toml = String::from("[operators.O]\n");
        for i in ids {
            match (&i.account, &i.user) {
                (Some(a), None) => toml.push_str(&format!("[operators.O.accounts.{a}]\n")),
                (Some(a), Some(u)) => {
                    toml.push_str(&format!("[operators.O.accounts.{a}.users.{u}]\n"))
                }
                _ => {}
            }
        }
        let loaded = crate::manifest::load::parse(
            std::path::Path::new("natsform.toml"),
            crate::manifest::load::Format::Toml,
            toml,
        )
        .unwrap();
        let mut all = desired(&loaded.manifest, &KeyBook::new());
        all.retain(|id, _| ids.contains(id));
        all
    }
}
