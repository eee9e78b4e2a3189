//! The planner: desired state (manifest + lock) against the store, giving
//! one action per object with its reasons and a before/after rendering.
//!
//! Pure: data in, data out. No file system, no clock, no randomness — the
//! caller reads the store and passes what it found.

pub mod desired;
pub mod existing;
pub mod keyref;
pub mod render;
pub mod render_claims;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use desired::{desired, required_keys, DesiredObject};
pub use existing::Existing;
pub use keyref::{KeyBook, KeyRef};
use render_claims::KeyNames;

use crate::tree::ObjectId;

/// What apply will do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Key addresses apply will generate.
    pub new_keys: Vec<String>,
}

impl Plan {
    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.new_keys.is_empty()
    }

    /// How many actions of `kind` the plan holds.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.action == kind).count()
    }
}

/// Everything the planner looks at.
pub struct Inputs<'a> {
    pub desired: &'a BTreeMap<ObjectId, DesiredObject>,
    pub existing: &'a BTreeMap<ObjectId, Existing>,
    pub keys: &'a KeyBook,
}

/// Computes the plan.
pub fn plan(inputs: &Inputs) -> Plan {
    let names: KeyNames = inputs
        .keys
        .iter()
        .map(|(addr, public)| (public.clone(), addr.clone()))
        .collect();
    let ids: BTreeSet<&ObjectId> = inputs
        .desired
        .keys()
        .chain(inputs.existing.keys())
        .collect();
    let mut actions = Vec::new();
    for id in ids {
        let want = inputs.desired.get(id);
        let have = inputs.existing.get(id);
        if let Some(action) = plan_object(id, want, have, &names) {
            actions.push(action);
        }
    }
    let mut new_keys: Vec<String> = inputs
        .desired
        .values()
        .flat_map(|d| [&d.subject, &d.signer])
        .filter(|k| k.public.is_none())
        .map(|k| k.address.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Keys that appear only as trusted signing keys (not as a signer or subject).
    for d in inputs.desired.values() {
        for addr in existing::placeholders_in(&d.claims) {
            if !new_keys.contains(&addr) {
                new_keys.push(addr);
            }
        }
    }
    new_keys.sort();
    Plan { actions, new_keys }
}

fn plan_object(
    id: &ObjectId,
    want: Option<&DesiredObject>,
    have: Option<&Existing>,
    names: &KeyNames,
) -> Option<Action> {
    let address = id.address();
    let mk = |action, reasons: Vec<String>, signer: Option<String>, before, after| Action {
        id: id.clone(),
        address: address.clone(),
        action,
        reasons,
        signer,
        before,
        after,
    };
    match (want, have) {
        (None, None) => None,
        (Some(w), None) => {
            let after = render_claims::render(&existing::normalize(id.kind(), &w.claims), names);
            Some(mk(
                ActionKind::Create,
                vec!["not in the store".into()],
                Some(w.signer.address.clone()),
                None,
                Some(after),
            ))
        }
        (None, Some(h)) => {
            let before = h
                .decoded
                .as_ref()
                .ok()
                .map(|d| render_claims::render(&d.payload, names));
            Some(mk(
                ActionKind::Delete,
                vec!["not in the manifest".into()],
                None,
                before,
                None,
            ))
        }
        (Some(w), Some(h)) => {
            let after = render_claims::render(&existing::normalize(id.kind(), &w.claims), names);
            let signer = Some(w.signer.address.clone());
            let decoded = match &h.decoded {
                Ok(d) => d,
                Err(e) => {
                    let reason =
                        format!("the stored JWT is not valid ({e}); it will be signed again");
                    return Some(mk(
                        ActionKind::Reissue,
                        vec![reason],
                        signer,
                        None,
                        Some(after),
                    ));
                }
            };
            let before = render_claims::render(&decoded.payload, names);
            if w.subject.public.as_deref() != Some(decoded.subject.as_str()) {
                let reason = match &w.subject.public {
                    None => format!("identity key {} is new", w.subject.address),
                    Some(_) => format!("identity key is now {}", w.subject.address),
                };
                return Some(mk(
                    ActionKind::Replace,
                    vec![reason],
                    signer,
                    Some(before),
                    Some(after),
                ));
            }
            let mut reasons = Vec::new();
            let kind = if before != after {
                reasons.push("claims changed".to_string());
                ActionKind::Update
            } else {
                ActionKind::Reissue
            };
            if w.signer.public.as_deref() != Some(decoded.issuer.as_str()) {
                let old = names
                    .get(&decoded.issuer)
                    .map(|a| format!("`{a}`"))
                    .unwrap_or_else(|| {
                        format!("{} (no longer in the manifest)", short(&decoded.issuer))
                    });
                reasons.push(format!(
                    "signed by {old}; the signer is now `{}`",
                    w.signer.address
                ));
            }
            if reasons.is_empty() {
                None
            } else {
                Some(mk(kind, reasons, signer, Some(before), Some(after)))
            }
        }
    }
}

/// A public key shortened for prose: `ABCDEFGHIJ…`.
pub fn short(key: &str) -> String {
    if key.len() > 12 {
        format!("{}…", &key[..12])
    } else {
        key.to_string()
    }
}
