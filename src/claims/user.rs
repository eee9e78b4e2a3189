//! User claims (`nats.type = "user"`), mirroring `jwt/v2/user_claims.go` (HEAD).

use super::gojson::nullable;
use super::jwt::{ClaimPayload, Claims, GenericFields, UserClaims};
use super::keys::{is_public_key, KeyKind};
use super::permissions::UserPermissionLimits;
use super::validate::{Issue, Issues, Validate};
use serde::{Deserialize, Serialize};

/// The user's `nats` object: the flattened permissions and limits, then
/// `issuer_account, tags, type, version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(flatten)]
    /// Permissions and limits (empty for scoped users).
    pub permission_limits: UserPermissionLimits,
    /// The account public key; required when a signing key signs the user.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub issuer_account: String,
    #[serde(flatten)]
    /// `tags`, `type`, `version`.
    pub generic: GenericFields,
}

impl ClaimPayload for User {
    const CLAIM_TYPE: &'static str = "user";
    const SUBJECT_KIND: KeyKind = KeyKind::User;
    const ENCODE_SIGNERS: &'static [KeyKind] = &[KeyKind::Account];
    const DECODE_ISSUERS: &'static [KeyKind] = &[KeyKind::Account];

    fn generic(&self) -> &GenericFields {
        &self.generic
    }
    fn generic_mut(&mut self) -> &mut GenericFields {
        &mut self.generic
    }
}

impl Claims<User> {
    /// Go `NewUserClaims(subject)`: no permissions, `subs`/`data`/`payload` -1.
    pub fn new(subject: impl Into<String>) -> UserClaims {
        let mut c = UserClaims::default();
        c.data.sub = subject.into();
        c.nats.permission_limits = UserPermissionLimits::unlimited();
        c
    }

    /// A user for a scoped signing key (Go `SetScoped(true)`): permissions
    /// and limits all zero, so they are omitted and the scope template applies.
    pub fn new_scoped(subject: impl Into<String>, issuer_account: impl Into<String>) -> UserClaims {
        let mut c = UserClaims::default();
        c.data.sub = subject.into();
        c.nats.issuer_account = issuer_account.into();
        c
    }
}

impl Validate for UserClaims {
    /// Go `UserClaims.Validate` (HEAD), blocking errors only.
    fn validate(&self) -> Vec<Issue> {
        let mut issues = Issues::default();
        self.nats.permission_limits.validate("nats", &mut issues);
        let ia = &self.nats.issuer_account;
        if !ia.is_empty() && !is_public_key(ia, KeyKind::Account) {
            issues.add(
                "nats.issuer_account",
                "account_id is not an account public key",
            );
        }
        issues.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::gojson::to_string;

    #[test]
    fn scoped_user_json_has_only_pub_sub_and_issuer_account() {
        let c = UserClaims::new_scoped("U", "A");
        assert_eq!(
            to_string(&c.nats),
            r#"{"pub":{},"sub":{},"issuer_account":"A"}"#
        );
        assert!(c.nats.permission_limits.is_empty());
    }

    #[test]
    fn new_user_has_unlimited_nats_limits() {
        let c = UserClaims::new("U");
        assert_eq!(
            to_string(&c.nats),
            r#"{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1}"#
        );
    }

    #[test]
    fn bad_src_times_and_queue_in_pub_are_reported() {
        let mut c = UserClaims::new("U");
        let pl = &mut c.nats.permission_limits;
        pl.limits.src.push("1.2.3.4".into());
        pl.limits.times.push(crate::claims::permissions::TimeRange {
            start: "17:00".into(),
            end: String::new(),
        });
        pl.permissions.publish.allow.push("a q".into());
        c.nats.issuer_account = "nope".into();
        let paths: Vec<String> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "nats.pub.allow[0]",
                "nats.src[0]",
                "nats.times[0].start",
                "nats.times[0].end",
                "nats.issuer_account"
            ]
        );
    }
}
