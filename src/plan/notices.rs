//! What the plan tells a reviewer besides the actions: deletions apply
//! refuses without `--allow-destroy`, revocation records of the lock that
//! no action carries, and seed problems apply refuses to work around.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::actions::{Action, ActionKind};
use super::existing::Existing;
use super::reasons::{Blocker, LockRecord};
use super::Inputs;
use crate::tree::{ObjectId, ObjectKind};

/// Revocation records the lock gains or drops where no account action
/// explains it (an account action's reasons already do).
pub(super) fn lock_records(inputs: &Inputs, acted: &BTreeSet<&ObjectId>) -> Vec<LockRecord> {
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
pub(super) fn seed_blockers(inputs: &Inputs) -> Vec<Blocker> {
    inputs
        .seed_problems
        .iter()
        .filter(|(addr, _)| inputs.required.contains_key(*addr))
        .map(|(addr, problem)| Blocker::Seed {
            address: addr.clone(),
            problem: problem.clone(),
        })
        .collect()
}

/// Slack for clocks that disagree a little.
const CLOCK_SKEW_SECS: i64 = 300;

/// A revocation only the lock records, at a time still to come: natsform
/// records the issue time of a JWT it revoked, never a future one, and a
/// future time (or a future `*`) would revoke every JWT issued until then,
/// including the ones apply is about to issue.
pub(super) fn future_revocation_blockers(inputs: &Inputs) -> Vec<Blocker> {
    let mut out = Vec::new();
    for (account, entries) in &inputs.state.restored_revocations {
        for (key, at) in entries {
            if *at > inputs.now + CLOCK_SKEW_SECS {
                out.push(Blocker::FutureRevocation {
                    account: account.address(),
                    key: key.clone(),
                    at: *at,
                });
            }
        }
    }
    out
}

/// Deletions of operators and of the system account an operator JWT names.
pub(super) fn protected_deletes(
    actions: &[Action],
    existing: &BTreeMap<ObjectId, Existing>,
) -> Vec<ObjectId> {
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
