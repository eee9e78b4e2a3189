//! Desired account claims.

use std::collections::BTreeMap;

use super::common::{finish, limit, permission_limits, permissions};
use super::names::OperatorNames;
use crate::claims::{
    Account as AccountNats, AccountClaims, AccountLimits, JetStreamLimits, NatsLimits,
    OperatorLimits, SigningKeys, UserScope,
};
use crate::manifest::model::{Account, JetStream, Operator, SigningKey};
use crate::plan::keyref::KeyRef;

pub(super) fn account_claims(
    name: &str,
    acc: &Account,
    key: &KeyRef,
    roles: &BTreeMap<&str, (Vec<KeyRef>, &SigningKey)>,
    op: &Operator,
    names: &OperatorNames,
) -> AccountClaims {
    let mut signing_keys = BTreeMap::new();
    for (role, (refs, sk)) in roles {
        for r in refs {
            // A scope template's omitted limits mean unlimited (NewUserScope).
            let scope = sk.is_scoped().then(|| UserScope {
                role: role.to_string(),
                template: permission_limits(
                    permissions(sk.publish.as_ref(), sk.subscribe.as_ref(), sk.resp.as_ref()),
                    sk.rules(),
                ),
                description: sk.description.clone(),
            });
            signing_keys.insert(r.value(), scope);
        }
    }
    let defaults = acc.default_permissions.clone().unwrap_or_default();
    let nats = AccountNats {
        imports: super::wiring::imports(acc, op, names),
        exports: super::wiring::exports(acc, names),
        limits: limits(acc),
        signing_keys: SigningKeys(signing_keys),
        revocations: acc
            .revocations
            .iter()
            .map(|(k, t)| (k.clone(), t.unix()))
            .collect(),
        default_permissions: permissions(
            defaults.publish.as_ref(),
            defaults.subscribe.as_ref(),
            defaults.resp.as_ref(),
        ),
        mappings: super::wiring::mappings(acc),
        authorization: super::wiring::authorization(name, acc, names),
        trace: None,
        cluster_traffic: String::new(),
        description: acc.description.clone().unwrap_or_default(),
        info_url: acc.info_url.clone().unwrap_or_default(),
        generic: Default::default(),
    };
    finish(name, key, nats, &acc.tags, acc.expires)
}

/// The `limits` object: NATS limits (omitted ones unlimited, as
/// `NewAccountClaims` sets them), then JetStream limits or tiers.
fn limits(acc: &Account) -> OperatorLimits {
    let l = acc.limits.clone().unwrap_or_default().wire();
    OperatorLimits {
        nats: NatsLimits {
            subs: l.subs,
            data: l.data,
            payload: l.payload,
        },
        account: AccountLimits {
            imports: l.imports,
            exports: l.exports,
            wildcard_exports: l.wildcards,
            disallow_bearer: l.disallow_bearer,
            conn: l.conn,
            leaf_node_conn: l.leaf,
        },
        jetstream: acc.jetstream.as_ref().map(jetstream).unwrap_or_default(),
        tiered: acc
            .jetstream_tiers
            .iter()
            .map(|(tier, js)| (tier.clone(), jetstream(js)))
            .collect(),
    }
}

/// JetStream limits: omitted storage is none (0), omitted counts are
/// unlimited, omitted per-stream maxima are unset (0: no cap).
fn jetstream(js: &JetStream) -> JetStreamLimits {
    let zero = |s: Option<crate::manifest::units::Size>| s.map_or(0, |s| s.wire());
    JetStreamLimits {
        memory_storage: zero(js.mem_storage),
        disk_storage: zero(js.disk_storage),
        streams: limit(js.streams),
        consumer: limit(js.consumer),
        max_ack_pending: limit(js.max_ack_pending),
        mem_max_stream_bytes: zero(js.mem_max_stream_bytes),
        disk_max_stream_bytes: zero(js.disk_max_stream_bytes),
        max_bytes_required: js.max_bytes_required,
    }
}
