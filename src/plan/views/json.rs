//! The JSON view: a versioned document for machines, and the text of saved
//! plans (`plan --out`), which `apply FILE` compares.
//!
//! # Document, `format_version` 1
//!
//! ```text
//! {
//!   "format_version": 1,
//!   "fingerprint": "sha256:…",        // saved plans only
//!   "base": {                          // `plan --base` only (not in saved plans)
//!     "manifest": "<path from the repository root>",
//!     "head": {"revision": "<as given>", "commit": "<short id>"} | null,  // null: working tree
//!     "base": {"revision": "<as given>", "commit": "<short id>"},
//!     "has_lock": true,                // the base holds this manifest's lock
//!     "has_store": true                // … and its store
//!   },
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
//!     "after": "<claims as the text plan renders them>" | null,
//!     "expires": {                     // only when the new JWT has a relative expiry
//!       "rule": "90d after each issue",
//!       "stored": "<RFC 3339 UTC>" | null,  // the stored JWT's expiry
//!       "same_rule": true              // the stored JWT was issued under this rule
//!     }
//!   }, …],
//!   "effects": [{                      // users whose JWT stays, whose permissions change
//!     "address": "<user address>",
//!     "reasons": ["<sentence>", …],
//!     "reason_kinds": ["role-changed"],
//!     "before": "<effective permissions, rendered>",
//!     "after": "<effective permissions, rendered>"
//!   }, …],
//!   "live": [{                         // only with live data (`plan --live`, apply)
//!     "operator": "<operator name>",
//!     "servers": ["<server name>", …], // the servers that answered
//!     "prune": false,                  // whether apply deletes unmanaged accounts (never foreign ones)
//!     "malformed": 0,                  // only when > 0: listed names that are not account keys
//!     "items": [{
//!       "account": "<account public key>",
//!       "address": "<account address>" | null,   // null: never managed here
//!       "kind": "missing" | "older" | "drifted" | "returned" | "retired" | "unmanaged" | "foreign",
//!       "servers": ["<server name>", …],
//!       "apply": "push" | "delete" | "none",
//!       "name": "<the name in the server's JWT>",  // unmanaged, foreign and returned only
//!       "issuer": "<public key>",      // foreign only, when the JWT verifies: the key, not
//!                                      // trusted by this operator, that signed it
//!       "drift": {                     // drifted only
//!         "reasons": ["<sentence>", …],
//!         "reason_kinds": ["unreadable" | "not-an-account" | "other-subject"
//!                          | "untrusted-issuer" | "same-jti-other-content" | "not-older", …],
//!         "live": "<the server's claims, rendered>" | null,
//!         "store": "<the store's claims, rendered>"
//!       }
//!     }, …]
//!   }, …]
//! }
//! ```
//!
//! With live data, `summary` also has `"live": {"push": N, "delete": N,
//! "unmanaged": N, "foreign": N}` (distinct accounts; unmanaged counts those
//! left alone without `--prune`; `foreign`, only when > 0, those another
//! operator issued or that do not verify, which apply never deletes), and
//! `changes` is true when a server needs a push or a deletion.
//!
//! Kind `foreign` (an account on the servers that no key of this operator
//! issued: `apply` is always `"none"`), its `issuer` and the summary's
//! `foreign` are additions within version 1; before them, such accounts
//! were listed as `unmanaged`.
//!
//! Reason kinds: `not-in-store`, `not-in-manifest`, `untrusted-jwt`,
//! `new-identity-key`, `lock-edited`, `identity-key-changed`,
//! `claims-changed`, `signer-rotated`, `issuer-key-removed`,
//! `issuer-not-trusted`, `issuer-unknown`, `expiring`, `key-revoked`,
//! `restores-revocation`, `revokes-user`, `role-changed`.
//! `reason_kinds`, `live` and `base` are additions within version 1: every field
//! of earlier version-1 documents keeps its meaning, and a plan without
//! live data is the same document as before.
//!
//! Times in the rendered claims (`expires`, `not_before`, revocations) are
//! RFC 3339 dates in UTC (`2027-02-23T10:00:00Z`), as in the text plan.
//! A relative expiry on the new JWT renders as its rule (`expires: 90d
//! after each issue`), without the date the text plan puts beside it (it
//! depends on the clock, and a saved plan must compare equal later); when
//! the stored JWT was issued under the same rule, `before` shows the rule
//! too, and `expires` (an addition within version 1) carries the rule and
//! the stored date.

use rayon::prelude::*;
use serde::Serialize;

use super::{action_sides, effective_side, Expiry};
use crate::live::{DriftReason, LivePlan};
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
    /// Set in saved plans: digests of each input, so that a stale plan
    /// can say which changed (`plan::saved::Inputs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<&'a crate::plan::saved::Inputs>,
    /// What `plan --base` compared; left out of saved plans, which
    /// `apply FILE` checks against a plan of the working tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<JsonBase<'a>>,
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
    /// What the live servers hold against the store, per operator.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live: Vec<JsonLive<'a>>,
    /// Seeds to re-seal and seed files nothing refers to; left out when
    /// there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<JsonVault<'a>>,
}

/// The vault part of the plan.
#[derive(Debug, Serialize)]
pub struct JsonVault<'a> {
    pub reseal: Vec<JsonReseal<'a>>,
    /// Seed files apply removes.
    pub orphans: Vec<JsonOrphan<'a>>,
    /// Bundles of user seeds (one per account) apply rewrites because
    /// their users change; left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<JsonBundle<'a>>,
}

/// An account's bundle of user seeds apply rewrites.
#[derive(Debug, Serialize)]
pub struct JsonBundle<'a> {
    /// The account's key address.
    pub account: &'a str,
    /// Its public key (`null`: generated by this apply).
    pub public_key: Option<&'a str>,
    /// The file it is written to (`null` until the key is generated).
    pub file: Option<String>,
    /// The account key whose bundle it moves from (a replaced key).
    pub moved_from: Option<&'a str>,
    /// User key addresses whose seeds join it.
    pub added: Vec<&'a str>,
    /// User key addresses whose seeds leave it.
    pub removed: Vec<&'a str>,
    /// Users' own seed files (public keys) moved into it.
    pub legacy_files: Vec<&'a str>,
}

/// A seed file apply removes: its key, and the address the lock binds it
/// to until this apply (`null` when no lock entry names it).
#[derive(Debug, Serialize)]
pub struct JsonOrphan<'a> {
    pub public_key: &'a str,
    pub was: Option<&'a str>,
    /// The file removed (`<KEY>.age`, or `<ACCOUNT>.users.age` for a
    /// bundle of user seeds).
    pub file: String,
}

/// One seed apply re-encrypts to `secrets.recipients`.
#[derive(Debug, Serialize)]
pub struct JsonReseal<'a> {
    pub address: &'a str,
    pub public_key: &'a str,
    /// Whether it is sealed to a recipient no longer listed.
    pub removes_recipient: bool,
    /// The file re-sealed (`<KEY>.age`, or `<ACCOUNT>.users.age`).
    pub file: String,
}

/// What `plan --base` compared.
#[derive(Debug, Serialize)]
pub struct JsonBase<'a> {
    pub manifest: &'a str,
    pub head: Option<JsonRevision<'a>>,
    pub base: JsonRevision<'a>,
    pub has_lock: bool,
    pub has_store: bool,
}

/// A git revision as given, and its commit's short id.
#[derive(Debug, Serialize)]
pub struct JsonRevision<'a> {
    pub revision: &'a str,
    pub commit: &'a str,
}

impl<'a> JsonRevision<'a> {
    fn of(r: &'a crate::plan::Revision) -> Self {
        JsonRevision {
            revision: &r.name,
            commit: &r.commit,
        }
    }
}

/// One operator's servers.
#[derive(Debug, Serialize)]
pub struct JsonLive<'a> {
    pub operator: &'a str,
    pub servers: &'a [String],
    pub prune: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub malformed: usize,
    pub items: Vec<JsonLiveItem<'a>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One account whose live state differs from the store.
#[derive(Debug, Serialize)]
pub struct JsonLiveItem<'a> {
    pub account: &'a str,
    pub address: Option<&'a str>,
    pub kind: &'static str,
    pub servers: &'a [String],
    pub apply: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<JsonDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<&'a str>,
}

/// A drifted account: why, and both sides rendered.
#[derive(Debug, Serialize)]
pub struct JsonDrift {
    pub reasons: Vec<String>,
    pub reason_kinds: Vec<&'static str>,
    pub live: Option<String>,
    pub store: String,
}

/// Distinct accounts apply pushes to or deletes from servers, and leaves.
#[derive(Debug, Serialize)]
pub struct JsonLiveSummary {
    pub push: usize,
    pub delete: usize,
    pub unmanaged: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub foreign: usize,
}

/// How many actions of each kind.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub reissue: usize,
    pub replace: usize,
    pub delete: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<JsonLiveSummary>,
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
    /// Only when the new JWT has a relative expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<JsonExpiry>,
}

/// A relative expiry of an action's new JWT.
#[derive(Debug, Serialize)]
pub struct JsonExpiry {
    /// `90d after each issue`.
    pub rule: String,
    /// The stored JWT's `exp`, RFC 3339 UTC, when it has one.
    pub stored: Option<String>,
    /// Whether the stored JWT was issued under the same rule (a re-issue
    /// then changes only the date).
    pub same_rule: bool,
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
    document_with(plan, fingerprint, None)
}

/// The saved plan: the document with its fingerprint and input digests.
pub fn saved_document(
    plan: &Plan,
    fingerprint: &str,
    inputs: &crate::plan::saved::Inputs,
) -> String {
    document_with(plan, Some(fingerprint), Some(inputs))
}

fn document_with(
    plan: &Plan,
    fingerprint: Option<&str>,
    inputs: Option<&crate::plan::saved::Inputs>,
) -> String {
    let names = &plan.key_names;
    let actions = plan
        .actions
        .par_iter()
        .map(|a: &Action| {
            // The new JWT's date is left out: it depends on the clock, and
            // a saved plan must read the same when `apply FILE` checks it.
            let (before, after) = action_sides(a, names, false);
            JsonAction {
                address: &a.address,
                action: a.action,
                reasons: a.reasons.iter().map(ToString::to_string).collect(),
                reason_kinds: a.reasons.iter().map(|r| r.kind()).collect(),
                signer: a.signer.as_deref(),
                before: a.before.as_ref().map(|_| before),
                after: a.after.as_ref().map(|_| after),
                expires: Expiry::of(a).map(|e| JsonExpiry {
                    rule: e.rule,
                    stored: e.stored.map(crate::plan::render_claims::date),
                    same_rule: e.same_rule,
                }),
            }
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
        inputs,
        base: plan
            .base
            .as_ref()
            .filter(|_| fingerprint.is_none())
            .map(|m| JsonBase {
                manifest: &m.manifest,
                head: m.head.as_ref().map(JsonRevision::of),
                base: JsonRevision::of(&m.base),
                has_lock: m.base_has_lock,
                has_store: m.base_has_store,
            }),
        changes: !plan.is_empty(),
        summary: Summary {
            create: plan.count(ActionKind::Create),
            update: plan.count(ActionKind::Update),
            reissue: plan.count(ActionKind::Reissue),
            replace: plan.count(ActionKind::Replace),
            delete: plan.count(ActionKind::Delete),
            live: (!plan.live.is_empty()).then(|| {
                let c = super::live::counts(plan);
                JsonLiveSummary {
                    push: c.push,
                    delete: c.delete,
                    unmanaged: c.unmanaged,
                    foreign: c.foreign,
                }
            }),
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
        live: plan.live.iter().map(|lp| live_of(plan, lp)).collect(),
        vault: (!plan.vault.is_empty()).then(|| JsonVault {
            reseal: plan
                .vault
                .reseal
                .iter()
                .map(|r| JsonReseal {
                    address: &r.address,
                    public_key: &r.public_key,
                    removes_recipient: r.removes_recipient,
                    file: r.file(),
                })
                .collect(),
            orphans: plan
                .vault
                .orphans
                .iter()
                .map(|o| JsonOrphan {
                    public_key: &o.public_key,
                    was: o.was.as_deref(),
                    file: o.file(),
                })
                .collect(),
            bundles: plan
                .vault
                .bundles
                .iter()
                .map(|b| JsonBundle {
                    account: &b.account,
                    public_key: b.public_key.as_deref(),
                    file: b
                        .public_key
                        .as_deref()
                        .map(|k| crate::plan::vault::file_name(k, true)),
                    moved_from: b.from.as_deref(),
                    added: b.added.iter().map(String::as_str).collect(),
                    removed: b.removed.iter().map(String::as_str).collect(),
                    legacy_files: b.legacy.iter().map(String::as_str).collect(),
                })
                .collect(),
        }),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("plan serializes");
    s.push('\n');
    s
}

fn live_of<'a>(plan: &'a Plan, lp: &'a LivePlan) -> JsonLive<'a> {
    let items = super::live::in_order(lp)
        .map(|i| {
            let apply = match super::live::colour(i, lp.prune) {
                Some(ActionKind::Delete) => "delete",
                Some(_) => "push",
                None => "none",
            };
            let drift = i.drift.as_ref().map(|d| {
                let (live, store) =
                    super::live::drift_sides(i, &plan.key_names).unwrap_or_default();
                JsonDrift {
                    reasons: d.reasons.iter().map(ToString::to_string).collect(),
                    reason_kinds: d.reasons.iter().map(DriftReason::kind).collect(),
                    live: d.live.as_ref().map(|_| live),
                    store,
                }
            });
            JsonLiveItem {
                account: &i.public,
                address: i.address.as_deref(),
                kind: i.kind.name(),
                servers: &i.servers,
                apply,
                name: i.name.as_deref(),
                drift,
                issuer: i.issuer.as_deref(),
            }
        })
        .collect();
    JsonLive {
        operator: &lp.operator,
        servers: &lp.servers,
        prune: lp.prune,
        malformed: lp.malformed,
        items,
    }
}
