//! Deletion that revokes: a user removed from the manifest is revoked in its
//! account's JWT, so creds already handed out stop working on a live server.
//!
//! Revocations are reconciled state with two records: the account JWT in the
//! store and a copy in `natsform.lock`. Both carry over to every re-issue,
//! so losing, damaging or rolling back either file loses no revocation: the
//! plan restores what the other still holds, and says so. A
//! removed user adds an entry for its key at its JWT's `iat` (revocation
//! matches `iat <= t`, so every JWT natsform issued for that key is covered
//! and the time is deterministic). A user re-added with a revoked key keeps
//! the entry — old JWTs stay revoked — and apply issues the new JWT after it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::desired::{DesiredClaims, DesiredObject};
use super::existing::Existing;
use super::reasons::Reason;
use crate::keys::Revocations;
use crate::tree::ObjectId;

/// The revocations an account must carry, with why they changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountRevocations {
    pub entries: BTreeMap<String, i64>,
    pub reasons: Vec<Reason>,
    /// Entries only the lock's record holds (key, time): restored into the
    /// account, and checked by the planner (a future time is refused).
    pub restored: Vec<(String, i64)>,
}

/// Revocations per desired account: the manifest's, the stored JWT's, the
/// lock's record (`recorded`), and those that deleted users add.
pub fn reconcile(
    desired: &BTreeMap<ObjectId, DesiredObject>,
    existing: &BTreeMap<ObjectId, Existing>,
    recorded: &Revocations,
) -> BTreeMap<ObjectId, AccountRevocations> {
    let mut out: BTreeMap<ObjectId, AccountRevocations> = BTreeMap::new();
    for (id, want) in desired
        .iter()
        .filter(|(id, _)| id.user.is_none() && id.account.is_some())
    {
        let mut acc = AccountRevocations::default();
        let merge = |entries: &mut BTreeMap<String, i64>, map: Option<&Value>| {
            if let Some(Value::Object(m)) = map {
                for (k, v) in m {
                    if let Some(t) = v.as_i64() {
                        let e = entries.entry(k.clone()).or_insert(t);
                        *e = (*e).max(t);
                    }
                }
            }
        };
        let manifest_revocations = want.claims.revocations().cloned().unwrap_or_default();
        acc.entries.clone_from(&manifest_revocations);
        let mut stored = BTreeMap::new();
        if let Some(Ok(d)) = existing.get(id).map(|e| &e.decoded) {
            merge(&mut stored, d.value().pointer("/nats/revocations"));
        }
        for (k, t) in &stored {
            let e = acc.entries.entry(k.clone()).or_insert(*t);
            *e = (*e).max(*t);
        }
        if let Some(lock) = recorded.get(&id.address()) {
            for (key, t) in lock {
                if stored.get(key).is_none_or(|s| s < t) {
                    // A restored key that a kept user still holds revokes that
                    // user's JWT: the reviewer must see who is hit.
                    let hits = desired
                        .range(id..)
                        .skip(1)
                        .take_while(|(u, _)| {
                            u.user.is_some() && u.account_id().as_ref() == Some(id)
                        })
                        .find(|(_, u)| {
                            key == "*" || u.subject.public.as_deref() == Some(key.as_str())
                        })
                        .map(|(u, _)| u.address());
                    acc.reasons.push(Reason::RestoresRevocation {
                        key: key.clone(),
                        hits,
                    });
                    if !manifest_revocations.contains_key(key) {
                        acc.restored.push((key.clone(), *t));
                    }
                }
                let e = acc.entries.entry(key.clone()).or_insert(*t);
                *e = (*e).max(*t);
            }
        }
        out.insert(id.clone(), acc);
    }
    // Both maps are sorted by id: one walk of each, not a lookup (and its
    // string comparisons) per stored user.
    let mut wanted = desired.iter().peekable();
    for (id, have) in existing.iter().filter(|(id, _)| id.user.is_some()) {
        while wanted.next_if(|(w, _)| *w < id).is_some() {}
        let want = wanted.peek().filter(|(w, _)| *w == id).map(|(_, w)| *w);
        // A kept user whose identity key changes (a new label, another
        // `public_key`, a rebinding in the lock): its old key is retired, and
        // creds already handed out for it must stop working too.
        let replaced = match want {
            None => false,
            Some(want) => match &have.decoded {
                Ok(d) => want.subject.public.as_deref() != Some(d.subject.as_str()),
                Err(_) => continue,
            },
        };
        if want.is_some() && !replaced {
            continue;
        }
        let Some(account) = id.account_id() else {
            continue;
        };
        let Some(acc) = out.get_mut(&account) else {
            continue;
        };
        let Ok(d) = &have.decoded else { continue };
        let before = acc.entries.get(&d.subject).copied();
        if before.is_some_and(|t| t >= d.issued_at) {
            continue;
        }
        acc.entries.insert(d.subject.clone(), d.issued_at);
        acc.reasons.push(if replaced {
            Reason::RevokesOldKey { user: id.address() }
        } else {
            Reason::Revokes { user: id.address() }
        });
    }
    out
}

/// The revocation time of `key` in desired account claims, if revoked.
pub fn revoked_at(account: &DesiredClaims, key: &str) -> Option<i64> {
    let revs = account.revocations()?;
    revs.get(key)
        .into_iter()
        .chain(revs.get("*"))
        .copied()
        .max()
}
