//! The planner: desired state (manifest + lock) against the store, giving
//! one action per object with its reasons and a before/after rendering.
//!
//! Pure: data in, data out. No file system, no clock, no randomness — the
//! caller reads the store and passes what it found.
//!
//! The cascade of a rotation is not special-cased: every object knows the
//! key that must sign it and the keys its parent trusts, so when a key
//! disappears (or stops being first in its list) everything it signed is
//! re-issued by the key that now signs for that role.

pub mod desired;
pub mod effective;
pub mod existing;
pub mod keyref;
pub mod render;
pub mod render_claims;
pub mod revocations;
pub mod saved;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

pub use desired::{desired, required_keys, DesiredObject};
pub use existing::Existing;
pub use keyref::{KeyBook, KeyRef};
use render_claims::KeyNames;

use crate::keys::Revocations;
use crate::manifest::Manifest;
use crate::tree::{ObjectId, ObjectKind};

/// What apply will do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Create,
    Update,
    Reissue,
    Replace,
    Delete,
}

impl ActionKind {
    /// The plan symbol, as Terraform users know them.
    pub fn symbol(self) -> &'static str {
        match self {
            ActionKind::Create => "+",
            ActionKind::Update => "~",
            ActionKind::Reissue => "↻",
            ActionKind::Replace => "-/+",
            ActionKind::Delete => "-",
        }
    }

    /// Verb phrase for headers: "will be created".
    pub fn phrase(self) -> &'static str {
        match self {
            ActionKind::Create => "will be created",
            ActionKind::Update => "will be updated",
            ActionKind::Reissue => "will be re-issued",
            ActionKind::Replace => "will be replaced (new identity key)",
            ActionKind::Delete => "will be deleted",
        }
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    #[serde(skip)]
    pub id: ObjectId,
    pub address: String,
    pub action: ActionKind,
    /// Why, in words a reviewer understands.
    pub reasons: Vec<String>,
    /// The key that will sign the new JWT (address), if one is written.
    pub signer: Option<String>,
    /// Rendering of the stored claims, if any.
    pub before: Option<String>,
    /// Rendering of the claims apply will write, if any.
    pub after: Option<String>,
}

/// A user whose JWT stays as it is but whose effective permissions change,
/// because the scoped role that signed it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub address: String,
    pub reasons: Vec<String>,
    pub before: String,
    pub after: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Users whose effective permissions change without a new JWT.
    pub effects: Vec<Effect>,
    /// Key addresses apply will generate.
    pub new_keys: Vec<String>,
    /// Deletions that need `--allow-destroy`: operators and system accounts.
    pub protected_deletes: Vec<String>,
    /// Things a reviewer must know that apply cannot fix.
    pub warnings: Vec<String>,
    /// Changes to the revocation record in `natsform.lock` that no JWT
    /// action carries (e.g. a lock that lacks what the store holds).
    pub lock_records: Vec<String>,
    /// Problems apply refuses to work around (a seed the lock names is
    /// missing or damaged); each says how to fix it.
    pub blockers: Vec<String>,
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
    pub revocation_reasons: BTreeMap<ObjectId, Vec<String>>,
    /// Every desired account's revocations, as the lock must record them.
    pub revocations: Revocations,
    /// Per account, the entries only the lock's record holds (key, time).
    pub restored_revocations: BTreeMap<ObjectId, Vec<(String, i64)>>,
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
    let mut restored_revocations = BTreeMap::new();
    for (id, revs) in revocations::reconcile(&objects, existing, recorded) {
        if !revs.restored.is_empty() {
            restored_revocations.insert(id.clone(), revs.restored.clone());
        }
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
        restored_revocations,
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
    plan.warnings = fixed_expiry_warnings(inputs);
    plan.lock_records = lock_records(inputs, &acted);
    plan.blockers = seed_blockers(inputs);
    plan.blockers.extend(future_revocation_blockers(inputs));
    plan
}

/// Revocation records the lock gains or drops where no account action
/// explains it (an account action's reasons already do).
fn lock_records(inputs: &Inputs, acted: &BTreeSet<&ObjectId>) -> Vec<String> {
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
        out.push(match w {
            Some(w) => {
                let new = w
                    .keys()
                    .filter(|k| h.is_none_or(|h| !h.contains_key(*k)))
                    .count();
                format!("natsform.lock will record the revocations of {account} that its stored JWT holds ({new} not recorded yet)")
            }
            None => format!(
                "natsform.lock drops the revocation record of {account} (not in the manifest)"
            ),
        });
    }
    out
}

/// A seed the lock names but the vault lacks (or holds damaged) would make
/// apply fail halfway or issue a JWT nobody can use; a key bound to two
/// objects would give two JWTs one identity. Apply refuses both.
fn seed_blockers(inputs: &Inputs) -> Vec<String> {
    inputs
        .seed_problems
        .iter()
        .filter(|(addr, _)| inputs.required.contains(*addr))
        .map(|(addr, problem)| format!("{addr}: {problem}"))
        .collect()
}

/// Slack for clocks that disagree a little.
const CLOCK_SKEW_SECS: i64 = 300;

/// A revocation only the lock records, at a time still to come: natsform
/// records the issue time of a JWT it revoked, never a future one, and a
/// future time (or a future `*`) would revoke every JWT issued until then,
/// including the ones apply is about to issue.
fn future_revocation_blockers(inputs: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    for (account, entries) in &inputs.state.restored_revocations {
        for (key, t) in entries {
            if *t > inputs.now + CLOCK_SKEW_SECS {
                out.push(format!(
                    "{}: natsform.lock records a revocation of {key} at {t} (unix seconds), which is in the future; natsform never records one\n    fix: restore natsform.lock from git (`git log -p -- natsform.lock` shows who added it); to revoke on purpose, use the account's `revocations` in the manifest",
                    account.address()
                ));
            }
        }
    }
    out
}

fn expiry_reason(exp: i64, now: i64, window: i64) -> String {
    let days = |s: i64| format!("{}d", s.div_euclid(86_400));
    if exp <= now {
        format!("expired {} ago", days(now - exp))
    } else {
        format!(
            "expires in {} (re-issued within {} of expiry)",
            days(exp - now),
            days(window)
        )
    }
}

/// JWTs with a fixed `expires` that fall inside the window: re-issuing would
/// not help, so the reviewer is told to move the date.
fn fixed_expiry_warnings(inputs: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    for (id, want) in &inputs.state.objects {
        let Some(Ok(d)) = inputs.existing.get(id).map(|e| &e.decoded) else {
            continue;
        };
        // Cheap checks first: parsing every desired object would cost.
        if want.valid_for.is_some()
            || d.expires <= 0
            || d.expires - inputs.now > inputs.reissue_before
        {
            continue;
        }
        let exp = want
            .claims
            .value()
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if exp > 0 && d.expires == exp {
            let when = if exp <= inputs.now {
                format!("expired {}d ago", (inputs.now - exp) / 86_400)
            } else {
                format!("expires in {}d", (exp - inputs.now) / 86_400)
            };
            out.push(format!("{}: {when}, on the fixed date its `expires` names; re-issuing cannot extend it, so move the date later in the manifest", id.address()));
        }
    }
    out
}

struct Ctx<'a> {
    inputs: &'a Inputs<'a>,
    names: KeyNames<'a>,
    /// Accounts whose stored JWT does not hold their desired claims.
    changed_accounts: BTreeSet<&'a ObjectId>,
}

impl Ctx<'_> {
    fn object(&self, id: &ObjectId) -> Option<Action> {
        let want = self.inputs.state.objects.get(id);
        let have = self.inputs.existing.get(id);
        let address = id.address();
        let action = |action, reasons: Vec<String>, before, after| {
            Some(Action {
                id: id.clone(),
                address: address.clone(),
                action,
                reasons,
                signer: want
                    .filter(|_| action != ActionKind::Delete)
                    .map(|w| w.signer.address.clone()),
                before,
                after,
            })
        };
        let (want, have) = match (want, have) {
            (None, None) => return None,
            (Some(w), None) => {
                let mut reasons = vec!["not in the store".to_string()];
                reasons.extend(self.revoked_key_note(id, w));
                reasons.extend(self.revocation_reasons(id));
                return action(
                    ActionKind::Create,
                    reasons,
                    None,
                    Some(self.render_desired(id, w)),
                );
            }
            (None, Some(h)) => {
                return action(
                    ActionKind::Delete,
                    vec!["not in the manifest".into()],
                    self.render_existing(id, h),
                    None,
                );
            }
            (Some(w), Some(h)) => (w, h),
        };
        let decoded = match &have.decoded {
            Ok(d) => d,
            Err(e) => {
                let reason =
                    format!("the stored JWT cannot be trusted ({e}); it will be signed again");
                return action(
                    ActionKind::Reissue,
                    vec![reason],
                    None,
                    Some(self.render_desired(id, want)),
                );
            }
        };
        if want.subject.public.as_deref() != Some(decoded.subject.as_str()) {
            let reason = match &want.subject.public {
                None => format!("identity key `{}` is new", want.subject.address),
                // The lock names no address for the stored key: nothing natsform
                // wrote explains the change, so a reviewer must be told.
                Some(new) if !self.names.contains_key(decoded.subject.as_str()) => format!(
                    "natsform.lock binds `{}` to {new}, but the stored JWT's identity is {}, a key the lock does not name (was the lock edited by hand?)",
                    want.subject.address,
                    decoded.subject
                ),
                Some(_) => format!("identity key is now `{}`", want.subject.address),
            };
            // A key its account has revoked (a deleted user's, bound here by
            // a hand-edited lock) would make that user's old seed usable
            // again with the new JWT: a reviewer must see it.
            let mut reasons = vec![reason];
            reasons.extend(
                self.revoked_key_note(id, want)
                    .or_else(|| self.revoked_elsewhere_note(id, want)),
            );
            return action(
                ActionKind::Replace,
                reasons,
                self.render_existing(id, have),
                Some(self.render_desired(id, want)),
            );
        }
        let mut reasons = Vec::new();
        // Accounts were compared once already (comparing is not cheap for them).
        let claims_changed = match id.kind() {
            ObjectKind::Account => self.changed_accounts.contains(id),
            _ => !decoded.holds(want),
        };
        if claims_changed {
            reasons.push("claims changed".to_string());
            reasons.extend(self.revocation_reasons(id));
        }
        reasons.extend(self.issuer_reason(id, want, &decoded.issuer));
        reasons.extend(self.revoked_jwt_reason(id, decoded));
        if want.valid_for.is_some()
            && decoded.expires > 0
            && decoded.expires - self.inputs.now <= self.inputs.reissue_before
        {
            reasons.push(expiry_reason(
                decoded.expires,
                self.inputs.now,
                self.inputs.reissue_before,
            ));
        }
        if !reasons.is_empty() {
            let kind = if claims_changed {
                ActionKind::Update
            } else {
                ActionKind::Reissue
            };
            return action(
                kind,
                reasons,
                self.render_existing(id, have),
                Some(self.render_desired(id, want)),
            );
        }
        None
    }

    /// Users of `account_id` whose JWTs stay but whose effective permissions
    /// change (their role's template changed).
    fn effects_of(&self, account_id: &ObjectId, acted: &BTreeSet<&ObjectId>) -> Vec<Effect> {
        let objects = &self.inputs.state.objects;
        let (Some(account), Some(stored)) = (
            objects.get(account_id),
            self.inputs.existing.get(account_id),
        ) else {
            return Vec::new();
        };
        let Ok(stored) = &stored.decoded else {
            return Vec::new();
        };
        let (desired_claims, stored_claims) = (account.claims.value(), stored.value());
        let show = |e: Option<(String, effective::Effective)>| {
            e.map(|(role, e)| effective_text(&role, &e, &self.names))
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        let users = objects.range(account_id..).skip(1).take_while(|(id, _)| {
            id.user.is_some() && id.account_id().as_ref() == Some(account_id)
        });
        for (id, want) in users {
            let Some(role) = &want.scoped_role else {
                continue;
            };
            if acted.contains(id) {
                continue;
            }
            let Some(Ok(decoded)) = self.inputs.existing.get(id).map(|e| &e.decoded) else {
                continue;
            };
            let after = desired_effective(id, want, account, &desired_claims);
            let before = stored_effective(decoded, stored, &stored_claims);
            if after != before {
                out.push(Effect {
                    address: id.address(),
                    reasons: vec![format!("role `{role}` changed in {}", account_id.address())],
                    before: show(before),
                    after: show(after),
                });
            }
        }
        out
    }

    /// Why a JWT signed by `issuer` must be signed again, if it must.
    fn issuer_reason(&self, id: &ObjectId, want: &DesiredObject, issuer: &str) -> Option<String> {
        if want.signer.public.as_deref() == Some(issuer) {
            return None;
        }
        let signer = &want.signer.address;
        let trusted = want
            .trusted
            .iter()
            .any(|k| k.public.as_deref() == Some(issuer));
        let parent = parent_address(id);
        Some(match self.names.get(issuer) {
            Some(addr) if trusted => format!("signed by `{addr}`, which stays trusted; `{signer}` signs now"),
            Some(addr) if !self.inputs.required.contains(*addr) => format!("issuer key `{addr}` removed; `{signer}` signs now"),
            Some(addr) => format!("issuer `{addr}` is not trusted by {parent}; `{signer}` signs now"),
            None => format!("issuer {} is not a key of this manifest, so {parent} does not trust it; `{signer}` signs now", short(issuer)),
        })
    }

    /// A kept user whose stored JWT its account revokes is issued again
    /// after the revocation (as apply does for every re-issue), so the
    /// manifest's users always hold a JWT that works.
    fn revoked_jwt_reason(&self, id: &ObjectId, decoded: &existing::DecodedJwt) -> Option<String> {
        let revocations = &self.inputs.state.revocations;
        if id.user.is_none() || revocations.is_empty() {
            return None;
        }
        let account = id.account_id()?.address();
        let entries = revocations.get(&account)?;
        let at = [entries.get(&decoded.subject), entries.get("*")]
            .into_iter()
            .flatten()
            .copied()
            .max()?;
        (decoded.issued_at <= at).then(|| {
            format!("its stored JWT (issued at {}) is revoked by {account} at {at}; it is issued again after the revocation", decoded.issued_at)
        })
    }

    /// Why an account's revocations change (deleted users, repairs).
    fn revocation_reasons(&self, id: &ObjectId) -> Vec<String> {
        self.inputs
            .state
            .revocation_reasons
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// A user created with a key its account has revoked: say what happens.
    fn revoked_key_note(&self, id: &ObjectId, want: &DesiredObject) -> Option<String> {
        let public = want.subject.public.as_ref()?;
        let account = self.inputs.state.objects.get(&id.account_id()?)?;
        let at = revocations::revoked_at(&account.claims.value(), public)?;
        Some(format!("its key was revoked at {at} (unix seconds); older JWTs stay revoked and this one is issued after that"))
    }

    /// A user getting a key that another account revoked (a user deleted
    /// there): its old seed would work again under this account. Only for
    /// replaces, which are rare: it looks at every account.
    fn revoked_elsewhere_note(&self, id: &ObjectId, want: &DesiredObject) -> Option<String> {
        let public = want.subject.public.as_ref()?;
        let own = id.account_id();
        self.inputs
            .state
            .objects
            .iter()
            .filter(|(a, _)| a.kind() == ObjectKind::Account && Some(*a) != own.as_ref())
            .find_map(|(a, acc)| {
                // Only the key itself: another account's `*` is about its own users.
                let at = acc
                    .claims
                    .value()
                    .pointer("/nats/revocations")?
                    .get(public.as_str())?
                    .as_i64()?;
                Some(format!(
                    "its key was revoked by {} at {at} (unix seconds): whoever holds its seed can use this JWT",
                    a.address()
                ))
            })
    }

    /// Effective permissions a desired scoped user will have, with its role.
    fn effective_desired(
        &self,
        id: &ObjectId,
        want: &DesiredObject,
    ) -> Option<(String, effective::Effective)> {
        let account = self.inputs.state.objects.get(&id.account_id()?)?;
        desired_effective(id, want, account, &account.claims.value())
    }

    /// Effective permissions a stored user has under its stored account.
    fn effective_existing(
        &self,
        id: &ObjectId,
        decoded: &existing::DecodedJwt,
    ) -> Option<(String, effective::Effective)> {
        let account = self
            .inputs
            .existing
            .get(&id.account_id()?)?
            .decoded
            .as_ref()
            .ok()?;
        stored_effective(decoded, account, &account.value())
    }

    fn render_desired(&self, id: &ObjectId, want: &DesiredObject) -> String {
        let mut claims: Value =
            serde_json::from_str(&existing::canonical(id.kind(), &want.claims.value()))
                .unwrap_or(Value::Null);
        if let (Some(v), Value::Object(m)) = (want.valid_for, &mut claims) {
            let validity = crate::manifest::duration::Duration::from_nanos(v * 1_000_000_000);
            m.insert("exp".into(), json!(format!("{validity} after each issue")));
        }
        let mut text = render_claims::render(&claims, &self.names);
        if let Some((role, e)) = self.effective_desired(id, want) {
            text.push_str(&effective_text(&role, &e, &self.names));
        }
        text
    }

    fn render_existing(&self, id: &ObjectId, have: &Existing) -> Option<String> {
        let decoded = have.decoded.as_ref().ok()?;
        let mut claims = decoded.value();
        if let Some(want) = self.inputs.state.objects.get(id) {
            existing::normalize_activations(&mut claims, &want.activations);
        }
        let mut text = render_claims::render(&claims, &self.names);
        if id.kind() == ObjectKind::User {
            if let Some((role, e)) = self.effective_existing(id, decoded) {
                text.push_str(&effective_text(&role, &e, &self.names));
            }
        }
        Some(text)
    }
}

/// Effective permissions of a desired scoped user under desired account
/// claims `account_claims`.
fn desired_effective(
    id: &ObjectId,
    want: &DesiredObject,
    account: &DesiredObject,
    account_claims: &Value,
) -> Option<(String, effective::Effective)> {
    let role = want.scoped_role.as_ref()?;
    let (_, template) = effective::scope_of(account_claims, &want.signer.value())?;
    let user_claims = want.claims.value();
    let ctx = effective::UserContext {
        name: id.name(),
        subject: &want.subject.value(),
        account_name: account.id.name(),
        account_subject: &account.subject.value(),
        user_tags: &effective::tags_of(&user_claims),
        account_tags: &effective::tags_of(account_claims),
    };
    Some((role.clone(), effective::expand(template, &ctx)))
}

/// Effective permissions of a stored user under its stored account.
fn stored_effective(
    user: &existing::DecodedJwt,
    account: &existing::DecodedJwt,
    account_claims: &Value,
) -> Option<(String, effective::Effective)> {
    let (role, template) = effective::scope_of(account_claims, &user.issuer)?;
    let claims = user.value();
    let ctx = effective::UserContext {
        name: claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        subject: &user.subject,
        account_name: account_claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        account_subject: &account.subject,
        user_tags: &effective::tags_of(&claims),
        account_tags: &effective::tags_of(account_claims),
    };
    Some((role.to_string(), effective::expand(template, &ctx)))
}

/// The effective-permissions block of a scoped user's rendering.
fn effective_text(role: &str, e: &effective::Effective, names: &KeyNames) -> String {
    let doc = json!({"effective_permissions": effective::block(role, e)});
    format!(
        "# as nats-server expands role `{role}` for this user:\n{}",
        render_claims::render(&doc, names)
    )
}

fn parent_address(id: &ObjectId) -> String {
    match id.kind() {
        ObjectKind::Operator => id.address(),
        ObjectKind::Account => ObjectId::operator(&id.operator).address(),
        ObjectKind::User => id.account_id().map(|a| a.address()).unwrap_or_default(),
    }
}

/// Deletions of operators and of the system account an operator JWT names.
fn protected_deletes(actions: &[Action], existing: &BTreeMap<ObjectId, Existing>) -> Vec<String> {
    let deleted: BTreeSet<&ObjectId> = actions
        .iter()
        .filter(|a| a.action == ActionKind::Delete)
        .map(|a| &a.id)
        .collect();
    let mut out = Vec::new();
    for id in &deleted {
        match id.kind() {
            ObjectKind::Operator => out.push(id.address()),
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
                        out.push(id.address());
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
