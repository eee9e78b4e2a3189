//! Desired operator claims.

use serde_json::{json, Map, Value};

use super::common::finish;
use crate::manifest::model::Operator;
use crate::plan::keyref::KeyRef;

pub(super) fn operator_claims(
    name: &str,
    op: &Operator,
    key: &KeyRef,
    signing: &[KeyRef],
    sys: Option<&KeyRef>,
) -> Value {
    let mut nats = Map::new();
    let mut sks: Vec<String> = signing.iter().map(KeyRef::value).collect();
    sks.sort();
    if !sks.is_empty() {
        nats.insert("signing_keys".into(), json!(sks));
    }
    if let Some(url) = &op.account_server_url {
        nats.insert("account_server_url".into(), json!(url));
    }
    if !op.service_urls.is_empty() {
        nats.insert("operator_service_urls".into(), json!(op.service_urls));
    }
    if let Some(sys) = sys {
        nats.insert("system_account".into(), json!(sys.value()));
    }
    if let Some(v) = &op.assert_server_version {
        nats.insert("assert_server_version".into(), json!(v));
    }
    if op.strict_signing_key_usage {
        nats.insert("strict_signing_key_usage".into(), json!(true));
    }
    finish(name, key, nats, "operator", &op.tags, op.expires)
}
