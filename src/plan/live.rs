//! The live plan: what the servers of each operator hold against the
//! store (issue 10). Pure: the caller reads the servers ([`LiveState`]) and
//! passes what they answered; no I/O, no clock.
//!
//! Per server and account key:
//!
//! - a managed account the server lacks: [`LiveKind::Missing`];
//! - the store's JWT (same `jti`, same payload): in sync, nothing to say;
//! - a valid account JWT of that key, signed by a key the operator trusts,
//!   issued before the store's: [`LiveKind::Older`];
//! - anything else under a managed key: [`LiveKind::Drifted`], with why
//!   and both sides' claims for a diff;
//! - a key the lock records as deleted, whose JWT verifies, was issued by a
//!   key this operator trusts and carries the recorded account's name:
//!   [`LiveKind::Returned`];
//! - the old key of an account this plan replaces: [`LiveKind::Retired`];
//! - any other account key whose JWT verifies and was issued by a key this
//!   operator trusts: [`LiveKind::Unmanaged`] (`--prune` deletes it);
//! - any other: [`LiveKind::Foreign`], never deleted. A server can trust
//!   several operators, and a DELETE signed by ours removes whatever
//!   account it names: only what this operator issued may be pruned.
//!
//! Accounts this plan changes anyway are compared with the store as it is
//! now: the item still shows, and apply pushes the new JWT once (the push
//! set is a map). Accounts this plan deletes get no item: the deletion
//! reaches every server. Server JWTs are hostile input: bounded in size,
//! verified before anything in them is believed, names and claims
//! redacted of secrets (the views escape them).

use std::collections::{BTreeMap, BTreeSet};

use super::existing::{self, DecodedJwt, Existing};
use super::{Action, ActionKind, DesiredState};
use crate::claims::OperatorClaims;
use crate::keys::{kind_of_public_key, DeletedAccounts, KeyKind};
use crate::live::{Drift, DriftReason, LiveItem, LiveKind, LivePlan, LiveState, MAX_NAME_CHARS};
use crate::tree::{ObjectId, ObjectKind};

/// Largest server JWT the planner decodes (a NATS message is at most
/// 64 MiB; account JWTs are rarely above a few KiB).
pub const MAX_LIVE_JWT_BYTES: usize = 4 << 20;

/// Everything the live planner looks at.
pub struct LiveInputs<'a> {
    /// What each operator's servers hold.
    pub live: &'a [LiveState],
    /// Whether apply deletes unmanaged accounts (`--prune`).
    pub prune: bool,
    pub state: &'a DesiredState,
    pub existing: &'a BTreeMap<ObjectId, Existing>,
    /// The plan's actions (which accounts it deletes).
    pub actions: &'a [Action],
    /// The lock's record of deleted accounts.
    pub deleted: &'a DeletedAccounts,
}

/// What happens to a managed account key in this plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The manifest keeps it.
    Keep,
    /// The plan deletes the account: its deletion reaches every server.
    Delete,
    /// The plan replaces the account's key: this old key is deleted.
    Retire,
}

struct Managed<'a> {
    address: String,
    /// The store's JWT of this key, when it holds one that verifies.
    store: Option<&'a DecodedJwt>,
    fate: Fate,
}

/// One live plan per [`LiveState`], in the order given.
pub fn plan_live(inputs: &LiveInputs) -> Vec<LivePlan> {
    inputs
        .live
        .iter()
        .map(|state| operator_plan(inputs, state))
        .collect()
}

/// The account keys natsform manages under `operator`: the manifest's (with
/// the store's JWT of the same key) and the store's that this plan deletes
/// or replaces.
fn managed<'a>(inputs: &'a LiveInputs, operator: &str) -> BTreeMap<String, Managed<'a>> {
    let of_operator = |id: &ObjectId| id.kind() == ObjectKind::Account && id.operator == operator;
    let stored = |id: &ObjectId| {
        inputs
            .existing
            .get(id)
            .and_then(|e| e.decoded.as_ref().ok())
            .filter(|d| d.kind == ObjectKind::Account)
    };
    let mut out = BTreeMap::new();
    for (id, want) in inputs
        .state
        .objects
        .iter()
        .filter(|(id, _)| of_operator(id))
    {
        let Some(public) = &want.subject.public else {
            continue;
        };
        out.insert(
            public.clone(),
            Managed {
                address: id.address(),
                store: stored(id).filter(|d| &d.subject == public),
                fate: Fate::Keep,
            },
        );
    }
    let deleted: BTreeSet<&ObjectId> = inputs
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Delete)
        .map(|a| &a.id)
        .collect();
    for id in inputs.existing.keys().filter(|id| of_operator(id)) {
        let Some(d) = stored(id) else { continue };
        let fate = if deleted.contains(id) || !inputs.state.objects.contains_key(id) {
            Fate::Delete
        } else {
            Fate::Retire
        };
        out.entry(d.subject.clone()).or_insert(Managed {
            address: id.address(),
            store: Some(d),
            fate,
        });
    }
    out
}

/// Whether a key of this operator signed an account JWT of `subject`: the
/// keys the manifest trusts, or the store's operator JWT (what servers run
/// with until apply writes a new one).
struct Trust {
    desired: BTreeSet<String>,
    stored: Option<OperatorClaims>,
}

impl Trust {
    fn of(inputs: &LiveInputs, operator: &str) -> Trust {
        let desired = inputs
            .state
            .objects
            .iter()
            .filter(|(id, _)| id.kind() == ObjectKind::Account && id.operator == operator)
            .flat_map(|(_, want)| want.trusted.iter())
            .filter_map(|k| k.public.clone())
            .collect();
        let stored = inputs
            .existing
            .get(&ObjectId::operator(operator))
            .and_then(|e| e.decoded.as_ref().ok())
            .and_then(|d| serde_json::from_str::<OperatorClaims>(&d.payload()).ok());
        Trust { desired, stored }
    }

    fn trusts(&self, issuer: &str, subject: &str) -> bool {
        self.desired.contains(issuer)
            || self
                .stored
                .as_ref()
                .is_some_and(|op| op.did_sign(issuer, subject))
    }
}

/// A server's JWT as far as it could be read.
struct Read {
    decoded: Result<DecodedJwt, DriftReason>,
}

impl Read {
    fn of(token: &str) -> Read {
        if token.len() > MAX_LIVE_JWT_BYTES {
            return Read {
                decoded: Err(DriftReason::Unreadable {
                    error: format!("larger than {} MiB", MAX_LIVE_JWT_BYTES >> 20),
                }),
            };
        }
        let decoded = existing::decode_live(token).map_err(|e| match e {
            existing::LiveDecodeError::Kind(found) => DriftReason::NotAnAccount {
                found: bounded(&crate::redact::redact_secrets(&found), 40),
            },
            existing::LiveDecodeError::Invalid(error) => DriftReason::Unreadable {
                error: bounded(&crate::redact::redact_secrets(&error), 300),
            },
        });
        Read { decoded }
    }

    /// The `name` claim, redacted and bounded.
    fn name(&self) -> Option<String> {
        let d = self.decoded.as_ref().ok()?;
        let name = d.value().get("name")?.as_str()?.to_string();
        Some(bounded(
            &crate::redact::redact_secrets(&name),
            MAX_NAME_CHARS,
        ))
    }
}

fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// An item being collected: servers grouped by what they hold.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    kind: LiveKind,
    public: String,
    /// Drifted JWTs group by the token the servers hold.
    token: Option<String>,
}

fn operator_plan(inputs: &LiveInputs, state: &LiveState) -> LivePlan {
    let operator = state.operator.as_str();
    let managed = managed(inputs, operator);
    let trust = Trust::of(inputs, operator);
    let prefix = format!("account.{operator}/");
    let recorded: BTreeMap<&str, &str> = inputs
        .deleted
        .iter()
        .filter(|(addr, _)| addr.starts_with(&prefix))
        .flat_map(|(addr, keys)| keys.iter().map(move |k| (k.as_str(), addr.as_str())))
        .collect();
    let mut servers: Vec<String> = state.servers.iter().map(|s| s.name.clone()).collect();
    servers.sort();
    servers.dedup();

    let mut groups: BTreeMap<GroupKey, (LiveItem, BTreeSet<String>)> = BTreeMap::new();
    let mut add = |key: GroupKey, server: &str, make: &dyn Fn() -> LiveItem| {
        groups
            .entry(key)
            .or_insert_with(|| (make(), BTreeSet::new()))
            .1
            .insert(server.to_string());
    };
    let mut malformed = 0;
    for server in &state.servers {
        for (public, token) in &server.accounts {
            if kind_of_public_key(public) != Some(KeyKind::Account) {
                malformed += 1;
                continue;
            }
            let item = |kind, address: Option<String>, name, drift| LiveItem {
                public: public.clone(),
                address,
                kind,
                servers: Vec::new(),
                name,
                drift,
                issuer: None,
            };
            match managed.get(public) {
                Some(m) => match m.fate {
                    Fate::Delete => {}
                    Fate::Retire => add(
                        GroupKey {
                            kind: LiveKind::Retired,
                            public: public.clone(),
                            token: None,
                        },
                        &server.name,
                        &|| item(LiveKind::Retired, Some(m.address.clone()), None, None),
                    ),
                    Fate::Keep => {
                        let Some(store) = m.store else {
                            // No stored JWT of this key: the plan creates or
                            // re-issues it, and apply pushes that.
                            continue;
                        };
                        let Some((kind, drift)) = compare(token, public, store, &trust) else {
                            continue;
                        };
                        let group_token = (kind == LiveKind::Drifted).then(|| token.clone());
                        add(
                            GroupKey {
                                kind,
                                public: public.clone(),
                                token: group_token,
                            },
                            &server.name,
                            &|| item(kind, Some(m.address.clone()), None, drift.clone()),
                        );
                    }
                },
                None => {
                    let read = Read::of(token);
                    let name = read.name();
                    // Ours only if it verifies as this key's account JWT
                    // and a key this operator trusts issued it: anything
                    // else is another operator's (or unreadable), and a
                    // DELETE signed by ours would remove it all the same.
                    let verified = read.decoded.as_ref().ok().filter(|d| &d.subject == public);
                    let ours = verified.is_some_and(|d| trust.trusts(&d.issuer, public));
                    let returned = recorded.get(public.as_str()).filter(|addr| {
                        // And it carries the recorded account's name: a lock
                        // edit cannot make apply delete someone else's
                        // account under a name of its choosing.
                        let account = addr.rsplit('/').next().unwrap_or_default();
                        ours && name.as_deref() == Some(account)
                    });
                    let kind = if returned.is_some() {
                        LiveKind::Returned
                    } else if ours {
                        LiveKind::Unmanaged
                    } else {
                        LiveKind::Foreign
                    };
                    let address = returned.map(|a| a.to_string());
                    let issuer = verified
                        .filter(|_| kind == LiveKind::Foreign)
                        .map(|d| d.issuer.clone());
                    add(
                        GroupKey {
                            kind,
                            public: public.clone(),
                            // Foreign JWTs group by who signed them.
                            token: issuer.clone(),
                        },
                        &server.name,
                        &|| LiveItem {
                            issuer: issuer.clone(),
                            ..item(kind, address.clone(), name.clone(), None)
                        },
                    );
                }
            }
        }
    }
    // Managed accounts a server lacks.
    for (public, m) in &managed {
        if m.fate != Fate::Keep {
            continue;
        }
        for server in &state.servers {
            if !server.accounts.contains_key(public) {
                add(
                    GroupKey {
                        kind: LiveKind::Missing,
                        public: public.clone(),
                        token: None,
                    },
                    &server.name,
                    &|| LiveItem {
                        public: public.clone(),
                        address: Some(m.address.clone()),
                        kind: LiveKind::Missing,
                        servers: Vec::new(),
                        name: None,
                        drift: None,
                        issuer: None,
                    },
                );
            }
        }
    }
    let mut items: Vec<LiveItem> = groups
        .into_values()
        .map(|(mut item, servers)| {
            item.servers = servers.into_iter().collect();
            item
        })
        .collect();
    // By kind, then as a reader finds them: by address, then key.
    items.sort_by(|a, b| {
        (
            a.kind,
            a.address.is_none(),
            &a.address,
            &a.public,
            &a.servers,
        )
            .cmp(&(
                b.kind,
                b.address.is_none(),
                &b.address,
                &b.public,
                &b.servers,
            ))
    });
    LivePlan {
        operator: operator.to_string(),
        servers,
        items,
        prune: inputs.prune,
        malformed,
    }
}

/// A server's `token` for the managed key `public` against the store's
/// JWT: `None` when in sync, else Older or Drifted (with the diff).
fn compare(
    token: &str,
    public: &str,
    store: &DecodedJwt,
    trust: &Trust,
) -> Option<(LiveKind, Option<Box<Drift>>)> {
    if token == store.token() {
        return None;
    }
    let read = Read::of(token);
    let drift = |reason: DriftReason, live: Option<&DecodedJwt>| {
        Some((
            LiveKind::Drifted,
            Some(Box::new(Drift {
                reasons: vec![reason],
                live: live.map(|d| crate::redact::redact_secrets(d.canonical()).into_owned()),
                store: store.canonical().to_string(),
            })),
        ))
    };
    let live = match &read.decoded {
        Ok(d) => d,
        Err(reason) => return drift(reason.clone(), None),
    };
    let live_jti = jti_of(live);
    if live.payload() == store.payload() {
        return None;
    }
    if live.subject != public {
        return drift(
            DriftReason::OtherSubject {
                subject: live.subject.clone(),
            },
            Some(live),
        );
    }
    if !trust.trusts(&live.issuer, public) {
        return drift(
            DriftReason::UntrustedIssuer {
                issuer: live.issuer.clone(),
            },
            Some(live),
        );
    }
    if live_jti.is_some() && live_jti == jti_of(store) {
        return drift(DriftReason::SameJtiOtherContent, Some(live));
    }
    if live.issued_at < store.issued_at {
        return Some((LiveKind::Older, None));
    }
    drift(
        DriftReason::NotOlder {
            live_iat: live.issued_at,
            store_iat: store.issued_at,
        },
        Some(live),
    )
}

fn jti_of(d: &DecodedJwt) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&d.payload()).ok()?;
    v.get("jti")?.as_str().map(str::to_string)
}

/// The record of deleted accounts after applying `actions`: the lock's
/// record, plus the verified key of every account the plan deletes and the
/// old key of every account it replaces. (The lock drops keys it binds.)
pub fn deleted_after(
    recorded: &DeletedAccounts,
    actions: &[Action],
    existing: &BTreeMap<ObjectId, Existing>,
) -> DeletedAccounts {
    let mut out = recorded.clone();
    for a in actions {
        if a.id.kind() != ObjectKind::Account
            || !matches!(a.action, ActionKind::Delete | ActionKind::Replace)
        {
            continue;
        }
        let Some(d) = existing
            .get(&a.id)
            .and_then(|e| e.decoded.as_ref().ok())
            .filter(|d| d.kind == ObjectKind::Account)
        else {
            continue;
        };
        // One address per key (the lock refuses a key under two).
        for keys in out.values_mut() {
            keys.remove(&d.subject);
        }
        out.entry(a.address.clone())
            .or_default()
            .insert(d.subject.clone());
    }
    out
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
