//! Desired account claims.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::common::{finish, limit, permissions, rules_into};
use super::names::OperatorNames;
use crate::manifest::model::{Account, JetStream, Operator, SigningKey};
use crate::plan::keyref::KeyRef;

pub(super) fn account_claims(
    name: &str,
    acc: &Account,
    key: &KeyRef,
    roles: &BTreeMap<&str, (Vec<KeyRef>, &SigningKey)>,
    op: &Operator,
    names: &OperatorNames,
) -> Value {
    let mut nats = Map::new();
    let imports = super::wiring::imports(acc, op, names);
    if !imports.is_empty() {
        nats.insert("imports".into(), Value::Array(imports));
    }
    let exports = super::wiring::exports(acc, names);
    if !exports.is_empty() {
        nats.insert("exports".into(), Value::Array(exports));
    }
    nats.insert("limits".into(), limits(acc));
    let mut signing: Vec<(String, Value)> = Vec::new();
    for (role, (refs, sk)) in roles {
        for r in refs {
            let k = r.value();
            let entry = if sk.is_scoped() {
                let mut template =
                    permissions(sk.publish.as_ref(), sk.subscribe.as_ref(), sk.resp.as_ref());
                // A scope template's omitted limits mean unlimited
                // (NewUserScope); rules_into writes them explicitly.
                rules_into(&mut template, sk.rules());
                let mut scope = Map::new();
                scope.insert("kind".into(), json!("user_scope"));
                scope.insert("key".into(), json!(k));
                scope.insert("role".into(), json!(role));
                scope.insert("template".into(), Value::Object(template));
                if let Some(d) = &sk.description {
                    scope.insert("description".into(), json!(d));
                }
                Value::Object(scope)
            } else {
                json!(k)
            };
            signing.push((k, entry));
        }
    }
    signing.sort_by(|a, b| a.0.cmp(&b.0));
    if !signing.is_empty() {
        nats.insert(
            "signing_keys".into(),
            Value::Array(signing.into_iter().map(|(_, v)| v).collect()),
        );
    }
    if !acc.revocations.is_empty() {
        let revs: Map<String, Value> = acc
            .revocations
            .iter()
            .map(|(k, t)| (k.clone(), json!(t.unix())))
            .collect();
        nats.insert("revocations".into(), Value::Object(revs));
    }
    let defaults = acc.default_permissions.clone().unwrap_or_default();
    nats.insert(
        "default_permissions".into(),
        Value::Object(permissions(
            defaults.publish.as_ref(),
            defaults.subscribe.as_ref(),
            defaults.resp.as_ref(),
        )),
    );
    let mappings = super::wiring::mappings(acc);
    if !mappings.is_empty() {
        nats.insert("mappings".into(), Value::Object(mappings));
    }
    if let Some(auth) = super::wiring::authorization(name, acc, names) {
        nats.insert("authorization".into(), auth);
    }
    if let Some(d) = &acc.description {
        nats.insert("description".into(), json!(d));
    }
    if let Some(u) = &acc.info_url {
        nats.insert("info_url".into(), json!(u));
    }
    finish(name, key, nats, "account", &acc.tags, acc.expires)
}

/// The `limits` object: NATS limits (omitted ones unlimited, as
/// `NewAccountClaims` sets them), then JetStream limits or tiers.
fn limits(acc: &Account) -> Value {
    let l = acc.limits.clone().unwrap_or_default().wire();
    let mut m = Map::new();
    m.insert("subs".into(), json!(l.subs));
    m.insert("data".into(), json!(l.data));
    m.insert("payload".into(), json!(l.payload));
    m.insert("imports".into(), json!(l.imports));
    m.insert("exports".into(), json!(l.exports));
    m.insert("wildcards".into(), json!(l.wildcards));
    m.insert("disallow_bearer".into(), json!(l.disallow_bearer));
    m.insert("conn".into(), json!(l.conn));
    m.insert("leaf".into(), json!(l.leaf));
    if let Some(js) = &acc.jetstream {
        m.extend(jetstream(js));
    }
    if !acc.jetstream_tiers.is_empty() {
        let tiers: Map<String, Value> = acc
            .jetstream_tiers
            .iter()
            .map(|(tier, js)| (tier.clone(), Value::Object(jetstream(js))))
            .collect();
        m.insert("tiered_limits".into(), Value::Object(tiers));
    }
    Value::Object(m)
}

/// JetStream limits: omitted storage is none (0), omitted counts are
/// unlimited, omitted per-stream maxima are unset (0: no cap).
fn jetstream(js: &JetStream) -> Map<String, Value> {
    let zero = |s: Option<crate::manifest::units::Size>| s.map_or(0, |s| s.wire());
    let mut m = Map::new();
    m.insert("mem_storage".into(), json!(zero(js.mem_storage)));
    m.insert("disk_storage".into(), json!(zero(js.disk_storage)));
    m.insert("streams".into(), json!(limit(js.streams)));
    m.insert("consumer".into(), json!(limit(js.consumer)));
    m.insert("max_ack_pending".into(), json!(limit(js.max_ack_pending)));
    m.insert(
        "mem_max_stream_bytes".into(),
        json!(zero(js.mem_max_stream_bytes)),
    );
    m.insert(
        "disk_max_stream_bytes".into(),
        json!(zero(js.disk_max_stream_bytes)),
    );
    m.insert("max_bytes_required".into(), json!(js.max_bytes_required));
    m
}
