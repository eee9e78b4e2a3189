//! Pieces of wire JSON shared by several claim types.

use serde_json::{json, Map, Value};

use crate::manifest::model::{ResponsePermission, Rules, SubjectPermission};
use crate::manifest::units::{Expiry, Limit, Size, UNLIMITED};
use crate::plan::keyref::KeyRef;

/// `pub`, `sub` (always present, as Go writes them) and `resp` (when set).
pub(super) fn permissions(
    publish: Option<&SubjectPermission>,
    subscribe: Option<&SubjectPermission>,
    resp: Option<&ResponsePermission>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("pub".into(), subject_permission(publish));
    m.insert("sub".into(), subject_permission(subscribe));
    if let Some(r) = resp {
        m.insert(
            "resp".into(),
            json!({"max": r.max.unwrap_or(1), "ttl": r.ttl.map(|d| d.as_nanos()).unwrap_or(0)}),
        );
    }
    m
}

/// Adds a user's (or scope template's) connection rules: `src`, `times`,
/// `times_location`, `subs`/`data`/`payload` (omitted ones unlimited, as
/// `NewUserClaims` sets them), `bearer_token`, `allowed_connection_types`.
pub(super) fn rules_into(m: &mut Map<String, Value>, rules: Rules<'_>) {
    if !rules.src.is_empty() {
        m.insert("src".into(), json!(rules.src));
    }
    if !rules.times.is_empty() {
        let times: Vec<Value> = rules
            .times
            .iter()
            .map(|t| json!({"start": t.start, "end": t.end}))
            .collect();
        m.insert("times".into(), Value::Array(times));
    }
    if let Some(loc) = rules.locale {
        m.insert("times_location".into(), json!(loc));
    }
    let limits = rules.limits.cloned().unwrap_or_default();
    m.insert("subs".into(), json!(limit(limits.subs)));
    m.insert("data".into(), json!(size(limits.data)));
    m.insert("payload".into(), json!(size(limits.payload)));
    if rules.bearer_token {
        m.insert("bearer_token".into(), json!(true));
    }
    if !rules.allowed_connection_types.is_empty() {
        let types: Vec<&str> = rules
            .allowed_connection_types
            .iter()
            .map(|t| t.as_str())
            .collect();
        m.insert("allowed_connection_types".into(), json!(types));
    }
}

/// A count limit as written, omitted meaning unlimited.
pub(super) fn limit(l: Option<Limit>) -> i64 {
    l.map_or(UNLIMITED, Limit::wire)
}

/// A size limit as written, omitted meaning unlimited.
pub(super) fn size(s: Option<Size>) -> i64 {
    s.map_or(UNLIMITED, Size::wire)
}

fn subject_permission(p: Option<&SubjectPermission>) -> Value {
    let mut m = Map::new();
    if let Some(p) = p {
        if !p.allow.is_empty() {
            m.insert("allow".into(), json!(p.allow));
        }
        if !p.deny.is_empty() {
            m.insert("deny".into(), json!(p.deny));
        }
    }
    Value::Object(m)
}

/// Tags as the Go library stores them: trimmed, lower-case, de-duplicated, sorted.
pub fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags.iter().map(|t| t.trim().to_lowercase()).collect();
    out.sort();
    out.dedup();
    out
}

/// Adds `tags` (when any), `type` and `version`, and wraps the `nats`
/// object with `name`, `sub` and, when set, `exp`.
pub(super) fn finish(
    name: &str,
    key: &KeyRef,
    mut nats: Map<String, Value>,
    kind: &str,
    tags: &[String],
    expires: Option<Expiry>,
) -> Value {
    if !tags.is_empty() {
        nats.insert("tags".into(), json!(normalize_tags(tags)));
    }
    nats.insert("type".into(), json!(kind));
    nats.insert("version".into(), json!(2));
    let mut top = Map::new();
    // A relative expiry depends on the issue time: apply adds it.
    if let Some(exp) = expires.and_then(Expiry::at) {
        top.insert("exp".into(), json!(exp.unix()));
    }
    top.insert("name".into(), json!(name));
    top.insert("sub".into(), json!(key.value()));
    top.insert("nats".into(), Value::Object(nats));
    Value::Object(top)
}
