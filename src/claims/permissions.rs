//! Permission and limit types shared by users, scope templates and account
//! default permissions (Go: `Permission`, `Permissions`,
//! `ResponsePermission`, `UserLimits`, `NatsLimits`, `UserPermissionLimits`).
//!
//! Field order and omitempty mirror `jwt/v2/types.go` and `user_claims.go`.
//! Struct-valued fields (`pub`, `sub`) are never omitted, as in Go.

use super::gojson::{is_false, is_zero, nullable};
use super::validate::{check_cidr, check_location, check_permission, check_time, Issues};
use serde::{Deserialize, Deserializer, Serialize};

/// Go's `NoLimit`.
pub const NO_LIMIT: i64 = -1;

/// Allow and deny subject lists for one direction (`pub` or `sub`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    /// Subjects allowed (a `sub` entry may be `subject queue`).
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    /// Subjects denied.
    pub deny: Vec<String>,
}

impl Permission {
    /// True when neither list has entries.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    fn validate(&self, path: &str, permit_queue: bool, issues: &mut Issues) {
        for (i, s) in self.allow.iter().enumerate() {
            check_permission(issues, &format!("{path}.allow[{i}]"), s, permit_queue);
        }
        for (i, s) in self.deny.iter().enumerate() {
            check_permission(issues, &format!("{path}.deny[{i}]"), s, permit_queue);
        }
    }
}

/// Allows replies to requests received on a permitted subscription.
/// Both fields are always written (Go has no omitempty on them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponsePermission {
    /// Maximum number of responses; the server turns 0 into 1.
    pub max: i64,
    /// Time the permission lasts, in **nanoseconds** (Go `time.Duration`);
    /// the server turns 0 into 2 minutes.
    pub ttl: i64,
}

/// `pub`, `sub` and optional `resp`. `pub` and `sub` are always written
/// (as `{}` when empty) because Go never omits struct values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    #[serde(rename = "pub", deserialize_with = "nullable")]
    /// Publish permissions (`pub`).
    pub publish: Permission,
    #[serde(rename = "sub", deserialize_with = "nullable")]
    /// Subscribe permissions (`sub`).
    pub subscribe: Permission,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Reply permission; without `pub.allow` it blocks plain publishing.
    pub resp: Option<ResponsePermission>,
}

impl Permissions {
    /// True when there is no pub/sub entry and no `resp`.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }

    /// Go `Permissions.Validate`: queues are allowed only in `sub` entries.
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        self.subscribe.validate(&join(path, "sub"), true, issues);
        self.publish.validate(&join(path, "pub"), false, issues);
    }
}

/// A daily time window, `HH:MM:SS` each; it may cross midnight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Start, `HH:MM:SS`.
    pub start: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// End, `HH:MM:SS`.
    pub end: String,
}

/// Go `UserLimits`: source networks and connect-time windows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserLimits {
    /// CIDRs (`1.2.3.4/32`; a bare IP is invalid). Decoding also accepts one
    /// comma-separated string, as Go's `CIDRList` does.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_cidr_list"
    )]
    pub src: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    /// Windows in which the user may connect.
    pub times: Vec<TimeRange>,
    /// IANA zone for `times`; empty means the server's local zone.
    #[serde(
        rename = "times_location",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub times_location: String,
}

/// Go `NatsLimits`. `-1` is unlimited; **0 or missing means zero**.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsLimits {
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum subscriptions.
    pub subs: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum bytes (not enforced by nats-server).
    pub data: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum message payload in bytes.
    pub payload: i64,
}

impl NatsLimits {
    /// All three limits `-1`, as `NewUserClaims`, `NewUserScope` and
    /// `NewAccountClaims` set them.
    pub fn unlimited() -> Self {
        NatsLimits {
            subs: NO_LIMIT,
            data: NO_LIMIT,
            payload: NO_LIMIT,
        }
    }
}

/// Go `UserPermissionLimits`: what a user JWT carries and what a scoped
/// signing key's `template` holds. Written flat, in Go's order: `pub, sub,
/// resp, src, times, times_location, subs, data, payload, bearer_token,
/// proxy_required, allowed_connection_types`.
///
/// `Default` is the Go zero value (limits 0 = nothing allowed), which is
/// what a scoped user must carry. Use [`UserPermissionLimits::unlimited`]
/// for the `NewUserClaims`/`NewUserScope` defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserPermissionLimits {
    #[serde(flatten)]
    /// `pub`, `sub`, `resp`.
    pub permissions: Permissions,
    #[serde(flatten)]
    /// `src`, `times`, `times_location`.
    pub limits: UserLimits,
    #[serde(flatten)]
    /// `subs`, `data`, `payload`.
    pub nats_limits: NatsLimits,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// The server skips the nonce signature check.
    pub bearer_token: bool,
    /// jwt >= 2.8.0, server >= 2.12.0; older servers ignore it.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    pub proxy_required: bool,
    /// `STANDARD`, `WEBSOCKET`, `LEAFNODE`, `LEAFNODE_WS`, `MQTT`, `MQTT_WS`,
    /// `IN_PROCESS`. Empty allows all.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    /// No permissions, limits `-1`: the defaults of `NewUserClaims` and `NewUserScope`.
    pub fn unlimited() -> Self {
        UserPermissionLimits {
            nats_limits: NatsLimits::unlimited(),
            ..Default::default()
        }
    }

    /// Go `HasEmptyPermissions`: equal to the zero value. Users signed by a
    /// scoped key must satisfy this (their limits must be absent, not -1).
    pub fn is_empty(&self) -> bool {
        *self == UserPermissionLimits::default()
    }

    /// Go `Permissions.Validate` + `Limits.Validate`.
    pub(crate) fn validate(&self, path: &str, issues: &mut Issues) {
        self.permissions.validate(path, issues);
        for (i, cidr) in self.limits.src.iter().enumerate() {
            check_cidr(issues, &format!("{}[{i}]", join(path, "src")), cidr);
        }
        for (i, t) in self.limits.times.iter().enumerate() {
            let p = format!("{}[{i}]", join(path, "times"));
            check_time(issues, &format!("{p}.start"), "start", &t.start);
            check_time(issues, &format!("{p}.end"), "end", &t.end);
        }
        if !self.limits.times_location.is_empty() {
            check_location(
                issues,
                &join(path, "times_location"),
                &self.limits.times_location,
            );
        }
    }
}

/// Joins a JSON field path; an empty prefix yields just the field name.
pub(crate) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Go `CIDRList.UnmarshalJSON`: an array is taken as is; a string is split
/// on commas, each part trimmed and lower-cased, empties and duplicates dropped.
fn deserialize_cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        One(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::List(v)) => v,
        Some(Raw::One(s)) => {
            let mut out: Vec<String> = Vec::new();
            for part in s.to_lowercase().split(',') {
                let part = part.trim().to_string();
                if !part.is_empty() && !out.contains(&part) {
                    out.push(part);
                }
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::gojson::to_string;

    #[test]
    fn empty_permissions_write_pub_and_sub_as_objects() {
        assert_eq!(to_string(&Permissions::default()), r#"{"pub":{},"sub":{}}"#);
    }

    #[test]
    fn user_permission_limits_are_flat_in_go_order() {
        let mut u = UserPermissionLimits::unlimited();
        u.permissions.publish.allow.push("a.>".into());
        u.permissions.resp = Some(ResponsePermission { max: 1, ttl: 0 });
        u.limits.src.push("10.0.0.0/8".into());
        u.limits.times.push(TimeRange {
            start: "01:00:00".into(),
            end: "02:00:00".into(),
        });
        u.limits.times_location = "UTC".into();
        u.bearer_token = true;
        u.proxy_required = true;
        u.allowed_connection_types.push("STANDARD".into());
        assert_eq!(
            to_string(&u),
            concat!(
                r#"{"pub":{"allow":["a.\u003e"]},"sub":{},"resp":{"max":1,"ttl":0},"#,
                r#""src":["10.0.0.0/8"],"times":[{"start":"01:00:00","end":"02:00:00"}],"#,
                r#""times_location":"UTC","subs":-1,"data":-1,"payload":-1,"bearer_token":true,"#,
                r#""proxy_required":true,"allowed_connection_types":["STANDARD"]}"#
            )
        );
    }

    #[test]
    fn src_accepts_a_comma_separated_string() {
        let u: UserPermissionLimits =
            serde_json::from_str(r#"{"src":"10.0.0.0/8, 1.2.3.4/32,,10.0.0.0/8"}"#).unwrap();
        assert_eq!(u.limits.src, vec!["10.0.0.0/8", "1.2.3.4/32"]);
    }

    #[test]
    fn missing_user_limits_mean_zero_and_nulls_are_zero_values() {
        let u: UserPermissionLimits =
            serde_json::from_str(r#"{"pub":null,"sub":{"allow":null},"times":null}"#).unwrap();
        assert!(u.is_empty());
    }
}
