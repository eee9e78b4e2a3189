//! The JSON view: a versioned document for machines, and the text of saved
//! plans (`plan --out`), which `apply FILE` compares.
//!
//! # Document, `format_version` 1
//!
//! ```text
//! {
//!   "format_version": 1,
//!   "fingerprint": "sha256:…",        // saved plans only
//!   "changes": true,                   // false when apply would change nothing
//!   "summary": {"create": 0, "update": 0, "reissue": 0, "replace": 0, "delete": 0},
//!   "new_keys": ["<key address>", …],  // keys apply generates
//!   "protected_deletes": ["<object address>", …],  // need --allow-destroy
//!   "warnings": ["<sentence>", …],
//!   "lock_records": ["<sentence>", …], // only when non-empty
//!   "blockers": ["<sentence>", …],     // only when non-empty: apply refuses
//!   "actions": [{
//!     "address": "<object address>",
//!     "action": "create" | "update" | "reissue" | "replace" | "delete",
//!     "reasons": ["<sentence>", …],
//!     "reason_kinds": ["<kind>", …],   // one per reason, same order
//!     "signer": "<key address>" | null,
//!     "before": "<claims as the text plan renders them>" | null,
//!     "after": "<claims as the text plan renders them>" | null
//!   }, …],
//!   "effects": [{                      // users whose JWT stays, whose permissions change
//!     "address": "<user address>",
//!     "reasons": ["<sentence>", …],
//!     "reason_kinds": ["role-changed"],
//!     "before": "<effective permissions, rendered>",
//!     "after": "<effective permissions, rendered>"
//!   }, …]
//! }
//! ```
//!
//! Reason kinds: `not-in-store`, `not-in-manifest`, `untrusted-jwt`,
//! `new-identity-key`, `lock-edited`, `identity-key-changed`,
//! `claims-changed`, `signer-rotated`, `issuer-key-removed`,
//! `issuer-not-trusted`, `issuer-unknown`, `expiring`, `key-revoked`,
//! `restores-revocation`, `revokes-user`, `role-changed`.
//! `reason_kinds` is an addition within version 1: every field of earlier
//! version-1 documents keeps its meaning.

use rayon::prelude::*;
use serde::Serialize;

use super::{effective_side, side_text};
use crate::plan::{Action, ActionKind, Effect, Plan};

/// Version of the JSON plan document; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The document (see the module documentation).
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub format_version: u32,
    /// Set in saved plans (`plan --out`): what the plan was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<&'a str>,
    pub changes: bool,
    pub summary: Summary,
    pub new_keys: &'a [String],
    pub protected_deletes: Vec<String>,
    pub warnings: Vec<String>,
    /// Changes to the lock's revocation record that no action carries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lock_records: Vec<String>,
    /// Problems apply refuses (missing or damaged seeds, shared keys).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
    pub actions: Vec<JsonAction<'a>>,
    pub effects: Vec<JsonEffect<'a>>,
}

/// How many actions of each kind.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub reissue: usize,
    pub replace: usize,
    pub delete: usize,
}

/// One action.
#[derive(Debug, Serialize)]
pub struct JsonAction<'a> {
    pub address: &'a str,
    pub action: ActionKind,
    pub reasons: Vec<String>,
    pub reason_kinds: Vec<&'static str>,
    pub signer: Option<&'a str>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One user whose effective permissions change.
#[derive(Debug, Serialize)]
pub struct JsonEffect<'a> {
    pub address: &'a str,
    pub reasons: Vec<String>,
    pub reason_kinds: Vec<&'static str>,
    pub before: String,
    pub after: String,
}

/// The plan as the JSON document (pretty-printed, stable order).
pub fn json(plan: &Plan) -> String {
    document(plan, None)
}

/// The JSON document, with the fingerprint of its inputs when saved.
pub fn document(plan: &Plan, fingerprint: Option<&str>) -> String {
    let names = &plan.key_names;
    let actions = plan
        .actions
        .par_iter()
        .map(|a: &Action| JsonAction {
            address: &a.address,
            action: a.action,
            reasons: a.reasons.iter().map(ToString::to_string).collect(),
            reason_kinds: a.reasons.iter().map(|r| r.kind()).collect(),
            signer: a.signer.as_deref(),
            before: a.before.as_ref().map(|c| side_text(Some(c), names)),
            after: a.after.as_ref().map(|c| side_text(Some(c), names)),
        })
        .collect();
    let effects = plan
        .effects
        .par_iter()
        .map(|e: &Effect| JsonEffect {
            address: &e.address,
            reasons: e.reasons.iter().map(ToString::to_string).collect(),
            reason_kinds: e.reasons.iter().map(|r| r.kind()).collect(),
            before: effective_side(e.before.as_ref(), names),
            after: effective_side(e.after.as_ref(), names),
        })
        .collect();
    let doc = Document {
        format_version: FORMAT_VERSION,
        fingerprint,
        changes: !plan.is_empty(),
        summary: Summary {
            create: plan.count(ActionKind::Create),
            update: plan.count(ActionKind::Update),
            reissue: plan.count(ActionKind::Reissue),
            replace: plan.count(ActionKind::Replace),
            delete: plan.count(ActionKind::Delete),
        },
        new_keys: &plan.new_keys,
        protected_deletes: plan
            .protected_deletes
            .iter()
            .map(|id| id.address())
            .collect(),
        warnings: plan.warnings.iter().map(ToString::to_string).collect(),
        lock_records: plan.lock_records.iter().map(ToString::to_string).collect(),
        blockers: plan.blockers.iter().map(ToString::to_string).collect(),
        actions,
        effects,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("plan serializes");
    s.push('\n');
    s
}
