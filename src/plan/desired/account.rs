//! Desired account claims.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::common::{finish, normalize_tags, permissions};
use crate::manifest::model::{Account, SigningKey};
use crate::plan::keyref::KeyRef;

pub(super) fn account_claims(
    name: &str,
    acc: &Account,
    key: &KeyRef,
    roles: &BTreeMap<&str, (Vec<KeyRef>, &SigningKey)>,
) -> Value {
    let mut nats = Map::new();
    nats.insert(
        "limits".into(),
        json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}),
    );
    let mut signing: Vec<(String, Value)> = Vec::new();
    for (role, (refs, sk)) in roles {
        for r in refs {
            let k = r.value();
            let entry = if sk.is_scoped() {
                let mut template =
                    permissions(sk.publish.as_ref(), sk.subscribe.as_ref(), sk.resp.as_ref());
                // A scope template's omitted limits mean unlimited (NewUserScope); say so explicitly.
                template.insert("subs".into(), json!(-1));
                template.insert("data".into(), json!(-1));
                template.insert("payload".into(), json!(-1));
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
    nats.insert("default_permissions".into(), json!({"pub": {}, "sub": {}}));
    if !acc.tags.is_empty() {
        nats.insert("tags".into(), json!(normalize_tags(&acc.tags)));
    }
    finish(name, key, nats, "account")
}
