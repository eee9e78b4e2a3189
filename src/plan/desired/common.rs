//! Pieces of wire JSON shared by several claim types.

use serde_json::{json, Map, Value};

use crate::manifest::model::{ResponsePermission, SubjectPermission};
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

pub(super) fn finish(name: &str, key: &KeyRef, mut nats: Map<String, Value>, kind: &str) -> Value {
    nats.insert("type".into(), json!(kind));
    nats.insert("version".into(), json!(2));
    json!({"name": name, "sub": key.value(), "nats": Value::Object(nats)})
}
