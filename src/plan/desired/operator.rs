//! Desired operator claims.

use super::common::finish;
use crate::claims::{Operator as OperatorNats, OperatorClaims};
use crate::manifest::model::Operator;
use crate::plan::keyref::KeyRef;

pub(super) fn operator_claims(
    name: &str,
    op: &Operator,
    key: &KeyRef,
    signing: &[KeyRef],
    sys: Option<&KeyRef>,
) -> OperatorClaims {
    let mut signing_keys: Vec<String> = signing.iter().map(KeyRef::value).collect();
    signing_keys.sort();
    let nats = OperatorNats {
        signing_keys,
        account_server_url: op.account_server_url.clone().unwrap_or_default(),
        operator_service_urls: op.service_urls.clone(),
        system_account: sys.map(KeyRef::value).unwrap_or_default(),
        assert_server_version: op.assert_server_version.clone().unwrap_or_default(),
        strict_signing_key_usage: op.strict_signing_key_usage,
        generic: Default::default(),
    };
    finish(name, key, nats, &op.tags, op.expires)
}
