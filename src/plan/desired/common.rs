//! Pieces of typed claims shared by several claim types.

use crate::claims::{
    self, ClaimPayload, Claims, GenericFields, Permission, Permissions, TimeRange, UserLimits,
    UserPermissionLimits, LIB_VERSION,
};
use crate::manifest::model::{ResponsePermission, Rules, SubjectPermission};
use crate::manifest::units::{Expiry, Limit, Size, UNLIMITED};
use crate::plan::keyref::KeyRef;

/// `pub`, `sub` (always present, as Go writes them) and `resp` (when set).
pub(super) fn permissions(
    publish: Option<&SubjectPermission>,
    subscribe: Option<&SubjectPermission>,
    resp: Option<&ResponsePermission>,
) -> Permissions {
    Permissions {
        publish: subject_permission(publish),
        subscribe: subject_permission(subscribe),
        resp: resp.map(|r| claims::ResponsePermission {
            max: r.max.unwrap_or(1),
            ttl: r.ttl.map(|d| d.as_nanos()).unwrap_or(0),
        }),
    }
}

/// A user's (or scope template's) permissions and connection rules: `src`,
/// `times`, `times_location`, `subs`/`data`/`payload` (omitted ones
/// unlimited, as `NewUserClaims` sets them), `bearer_token`,
/// `allowed_connection_types`.
pub(super) fn permission_limits(
    permissions: Permissions,
    rules: Rules<'_>,
) -> UserPermissionLimits {
    let limits = rules.limits.cloned().unwrap_or_default();
    UserPermissionLimits {
        permissions,
        limits: UserLimits {
            src: rules.src.to_vec(),
            times: rules
                .times
                .iter()
                .map(|t| TimeRange {
                    start: t.start.clone(),
                    end: t.end.clone(),
                })
                .collect(),
            times_location: rules.locale.unwrap_or_default().to_string(),
        },
        nats_limits: claims::NatsLimits {
            subs: limit(limits.subs),
            data: size(limits.data),
            payload: size(limits.payload),
        },
        bearer_token: rules.bearer_token,
        proxy_required: false,
        allowed_connection_types: rules
            .allowed_connection_types
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
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

fn subject_permission(p: Option<&SubjectPermission>) -> Permission {
    match p {
        Some(p) => Permission {
            allow: p.allow.clone(),
            deny: p.deny.clone(),
        },
        None => Permission::default(),
    }
}

/// Tags as the Go library stores them: trimmed, lower-case, de-duplicated, sorted.
pub fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags.iter().map(|t| t.trim().to_lowercase()).collect();
    out.sort();
    out.dedup();
    out
}

/// The claims of one object: `name`, `sub`, a fixed `exp` (a relative
/// expiry depends on the issue time: apply adds it), and `nats` with its
/// `tags`, `type` and `version`.
pub(super) fn finish<N: ClaimPayload>(
    name: &str,
    key: &KeyRef,
    mut nats: N,
    tags: &[String],
    expires: Option<Expiry>,
) -> Claims<N> {
    *nats.generic_mut() = GenericFields {
        tags: normalize_tags(tags),
        claim_type: N::CLAIM_TYPE.to_string(),
        version: LIB_VERSION,
    };
    let mut c = Claims::<N> {
        data: Default::default(),
        nats,
    };
    c.data.exp = expires.and_then(Expiry::at).map_or(0, |t| t.unix());
    c.data.name = name.to_string();
    c.data.sub = key.value();
    c
}
