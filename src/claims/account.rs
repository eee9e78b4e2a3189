//! Account claims (`nats.type = "account"`), mirroring `jwt/v2/account_claims.go` (HEAD).

use super::exports::{service_import_local, validate_exports, validate_imports, Export, Import};
use super::gojson::{is_false, is_zero, nullable};
use super::jwt::{AccountClaims, ClaimPayload, Claims, GenericFields};
use super::keys::{is_public_key, KeyKind};
use super::permissions::{NatsLimits, Permissions, NO_LIMIT};
use super::signing_keys::SigningKeys;
use super::validate::{
    check_info, check_subject, has_wildcards, is_contained_in, Issue, Issues, Validate,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Go `AccountLimits`. `-1` is unlimited; **0 or missing means none**.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum number of imports (`-1` unlimited).
    pub imports: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum number of exports (`-1` unlimited).
    pub exports: i64,
    /// Wildcard exports allowed (checked only when `exports != -1`).
    #[serde(
        rename = "wildcards",
        skip_serializing_if = "is_false",
        deserialize_with = "nullable"
    )]
    pub wildcard_exports: bool,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// Refuse users whose JWT is a bearer token (server >= 2.9.0).
    pub disallow_bearer: bool,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum client connections (`-1` unlimited, 0 none).
    pub conn: i64,
    #[serde(
        rename = "leaf",
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    /// Maximum leaf node connections (`leaf`).
    pub leaf_node_conn: i64,
}

/// Go `JetStreamLimits`. All zero means JetStream is disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamLimits {
    #[serde(
        rename = "mem_storage",
        skip_serializing_if = "is_zero",
        deserialize_with = "nullable"
    )]
    /// Bytes of memory storage across streams (`mem_storage`; 0 disables).
    pub memory_storage: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Bytes of disk storage across streams (0 disables).
    pub disk_storage: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum number of streams.
    pub streams: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum number of consumers.
    pub consumer: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum ack pending per consumer.
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum bytes of one memory stream (0 unlimited).
    pub mem_max_stream_bytes: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    /// Maximum bytes of one disk stream (0 unlimited).
    pub disk_max_stream_bytes: i64,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// Streams must declare a maximum size.
    pub max_bytes_required: bool,
}

/// Go `OperatorLimits`: NATS, account and JetStream limits flattened into
/// one object, then `tiered_limits`. Always written, even when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorLimits {
    #[serde(flatten)]
    /// `subs`, `data`, `payload`.
    pub nats: NatsLimits,
    #[serde(flatten)]
    /// `imports` … `leaf`.
    pub account: AccountLimits,
    #[serde(flatten)]
    /// Untiered JetStream limits.
    pub jetstream: JetStreamLimits,
    /// Tier (`R1`, `R3`, …) → limits. Exclusive with untiered JetStream limits.
    #[serde(
        rename = "tiered_limits",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub tiered: BTreeMap<String, JetStreamLimits>,
}

impl OperatorLimits {
    /// The defaults of Go's `NewAccountClaims`: everything unlimited
    /// (`-1`, wildcards allowed) except JetStream, which is disabled.
    pub fn unlimited() -> Self {
        OperatorLimits {
            nats: NatsLimits::unlimited(),
            account: AccountLimits {
                imports: NO_LIMIT,
                exports: NO_LIMIT,
                wildcard_exports: true,
                disallow_bearer: false,
                conn: NO_LIMIT,
                leaf_node_conn: NO_LIMIT,
            },
            jetstream: JetStreamLimits::default(),
            tiered: BTreeMap::new(),
        }
    }

    /// Go `IsEmpty`: every limit zero and no tiers.
    pub fn is_empty(&self) -> bool {
        *self == OperatorLimits::default()
    }

    /// Go `IsJSEnabled`.
    pub fn is_jetstream_enabled(&self) -> bool {
        if !self.tiered.is_empty() {
            return self
                .tiered
                .values()
                .any(|l| l.memory_storage != 0 || l.disk_storage != 0);
        }
        self.jetstream.memory_storage != 0 || self.jetstream.disk_storage != 0
    }
}

/// One destination of a subject mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightedMapping {
    /// Always written.
    #[serde(deserialize_with = "nullable")]
    pub subject: String,
    /// Percent, 1..=100; 0 (omitted) means 100.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    pub weight: u8,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Restricts this destination to one cluster.
    pub cluster: String,
}

impl WeightedMapping {
    /// Go `GetWeight`: 0 means 100.
    pub fn effective_weight(&self) -> u32 {
        if self.weight == 0 {
            100
        } else {
            u32::from(self.weight)
        }
    }
}

/// Auth callout settings (jwt >= 2.4.0, server >= 2.10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalAuthorization {
    /// Users (`U…`) that bypass the callout (the auth service itself).
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub auth_users: Vec<String>,
    /// Accounts (`A…`) or `"*"` the service may place users in.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub allowed_accounts: Vec<String>,
    /// Curve public key (`X…`) for encrypting requests.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub xkey: String,
}

/// Message tracing (jwt >= 2.5.4, server >= 2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgTrace {
    #[serde(
        rename = "dest",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Subject traces are sent to; no wildcards.
    pub destination: String,
    /// 1..=100; 0 means 100.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    pub sampling: i64,
}

/// The account's `nats` object. Key order: `imports, exports, limits,
/// signing_keys, revocations, default_permissions, mappings, authorization,
/// trace, cluster_traffic, description, info_url, tags, type, version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    /// Sorted by subject on encode, as Go does.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub imports: Vec<Import>,
    /// Sorted by subject on encode, as Go does.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub exports: Vec<Export>,
    /// Always written.
    #[serde(deserialize_with = "nullable")]
    pub limits: OperatorLimits,
    #[serde(skip_serializing_if = "SigningKeys::is_empty")]
    /// Keys that may sign users, plain or scoped.
    pub signing_keys: SigningKeys,
    /// Public key (or `*`) → unix seconds; users with `iat <=` it are revoked.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub revocations: BTreeMap<String, i64>,
    /// Always written (`{"pub":{},"sub":{}}` when empty).
    #[serde(deserialize_with = "nullable")]
    pub default_permissions: Permissions,
    /// Source subject → weighted destinations.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    /// jwt >= 2.4.0 always writes this object (`{}` when empty); jwt 2.3.0
    /// does not know it. `None` omits it, which is what 2.3.0-era tools
    /// wrote and what natsform writes unless auth callout is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<ExternalAuthorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Message tracing (jwt >= 2.5.4).
    pub trace: Option<MsgTrace>,
    /// `""`, `"system"` or `"owner"` (jwt >= 2.6.0).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub cluster_traffic: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Free text, at most 8 KiB.
    pub description: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// A URL with scheme and host, at most 8 KiB.
    pub info_url: String,
    #[serde(flatten)]
    /// `tags`, `type`, `version`.
    pub generic: GenericFields,
}

impl ClaimPayload for Account {
    const CLAIM_TYPE: &'static str = "account";
    const SUBJECT_KIND: KeyKind = KeyKind::Account;
    // natsform never self-signs accounts; servers need an operator issuer.
    const ENCODE_SIGNERS: &'static [KeyKind] = &[KeyKind::Operator];
    const DECODE_ISSUERS: &'static [KeyKind] = &[KeyKind::Account, KeyKind::Operator];

    fn generic(&self) -> &GenericFields {
        &self.generic
    }
    fn generic_mut(&mut self) -> &mut GenericFields {
        &mut self.generic
    }
    /// Go sorts exports and imports by subject (unstable `sort.Sort`, which
    /// is insertion sort — hence stable — for up to 12 elements).
    fn prepare_encode(&mut self) -> Result<(), super::error::ClaimsError> {
        self.exports.sort_by(|a, b| a.subject.cmp(&b.subject));
        self.imports.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(())
    }
    /// Go `loadAccount`: tiered limits zero the untiered JetStream limits.
    fn after_decode(&mut self) {
        if !self.limits.tiered.is_empty() {
            self.limits.jetstream = JetStreamLimits::default();
        }
    }
}

impl Claims<Account> {
    /// Go `NewAccountClaims(subject)`: limits unlimited except JetStream
    /// (disabled), default permissions empty, no signing keys.
    pub fn new(subject: impl Into<String>) -> AccountClaims {
        let mut c = AccountClaims::default();
        c.data.sub = subject.into();
        c.nats.limits = OperatorLimits::unlimited();
        c
    }

    /// Go HEAD `AccountClaims.DidSign`: the account key itself, or one of
    /// its signing keys when the claim's `issuer_account` names this
    /// account. `issuer_account` is the user's or activation's, `""` if unset.
    pub fn did_sign(&self, issuer: &str, issuer_account: &str) -> bool {
        issuer == self.data.sub
            || (issuer_account == self.data.sub && self.nats.signing_keys.0.contains_key(issuer))
    }

    /// Go `IsClaimRevoked` for a user or activation subject issued at `iat`:
    /// revoked when `revocations[sub]` or `revocations["*"]` is `>= iat`;
    /// a zero `iat` counts as revoked.
    pub fn is_revoked(&self, subject: &str, iat: i64) -> bool {
        if iat == 0 || subject.is_empty() {
            return true;
        }
        let r = &self.nats.revocations;
        r.get("*").is_some_and(|t| *t >= iat) || r.get(subject).is_some_and(|t| *t >= iat)
    }
}

impl Validate for AccountClaims {
    /// Go `Account.Validate` (HEAD), blocking errors only.
    fn validate(&self) -> Vec<Issue> {
        let a = &self.nats;
        let mut issues = Issues::default();
        validate_imports(&a.imports, &self.data.sub, &mut issues);
        validate_exports(&a.exports, &mut issues);
        validate_limits(&a.limits, &mut issues);
        a.default_permissions
            .validate("nats.default_permissions", &mut issues);
        validate_mappings(&a.mappings, &mut issues);
        if let Some(auth) = &a.authorization {
            validate_authorization(auth, &mut issues);
        }
        if let Some(t) = &a.trace {
            let mut dest = Issues::default();
            check_subject(&mut dest, "nats.trace.dest", &t.destination);
            if let Some(first) = dest.0.into_iter().next() {
                issues.add(
                    "nats.trace.dest",
                    format!("the account Trace.Destination {}", first.message),
                );
            }
            if has_wildcards(&t.destination) {
                issues.add(
                    "nats.trace.dest",
                    format!(
                        "the account Trace.Destination subject {:?} is not a valid publish subject",
                        t.destination
                    ),
                );
            }
            if !(0..=100).contains(&t.sampling) {
                issues.add(
                    "nats.trace.sampling",
                    format!("the account Trace.Sampling value '{}' is not valid, should be in the range [1..100]", t.sampling),
                );
            }
        }
        let l = &a.limits.account;
        if l.imports != NO_LIMIT && a.imports.len() as i64 > l.imports {
            issues.add(
                "nats.imports",
                "the account contains more imports than allowed by the operator",
            );
        }
        if l.exports != NO_LIMIT {
            if a.exports.len() as i64 > l.exports {
                issues.add(
                    "nats.exports",
                    "the account contains more exports than allowed by the operator",
                );
            }
            if !l.wildcard_exports {
                for (i, e) in a.exports.iter().enumerate() {
                    if has_wildcards(&e.subject) {
                        issues.add(
                            &format!("nats.exports[{i}].subject"),
                            "the account contains wildcard exports that are not allowed by the operator",
                        );
                    }
                }
            }
        }
        for (key, scope) in &a.signing_keys.0 {
            if !is_public_key(key, KeyKind::Account) {
                let msg = if scope.is_some() {
                    format!("{key} is not an account public key")
                } else {
                    format!("{key:?} is not a valid account signing key")
                };
                issues.add("nats.signing_keys", msg);
            }
        }
        check_info(&mut issues, "nats", &a.description, &a.info_url);
        if !matches!(a.cluster_traffic.as_str(), "" | "system" | "owner") {
            issues.add(
                "nats.cluster_traffic",
                format!("unknown cluster traffic option: {:?}", a.cluster_traffic),
            );
        }
        issues.0
    }
}

fn validate_limits(l: &OperatorLimits, issues: &mut Issues) {
    if !l.tiered.is_empty() {
        if l.jetstream != JetStreamLimits::default() {
            issues.add(
                "nats.limits",
                "JetStream Limits and tiered JetStream Limits are mutually exclusive",
            );
        }
        if l.tiered.contains_key("") {
            issues.add(
                "nats.limits.tiered_limits",
                "Tiered JetStream Limits can not contain a blank \"\" tier name",
            );
        }
    }
}

/// Go HEAD `Mapping.Validate`: each weight at most 100; per source, the
/// weights without a cluster, and those of each cluster, total at most 100.
fn validate_mappings(m: &BTreeMap<String, Vec<WeightedMapping>>, issues: &mut Issues) {
    for (from, dests) in m {
        let path = format!("nats.mappings[{from:?}]");
        check_subject(issues, &path, from);
        let mut per_cluster: BTreeMap<&str, u32> = BTreeMap::new();
        let mut total = 0u32;
        for (i, d) in dests.iter().enumerate() {
            let dp = format!("{path}[{i}]");
            check_subject(issues, &format!("{dp}.subject"), &d.subject);
            if d.effective_weight() > 100 {
                issues.add(
                    &format!("{dp}.weight"),
                    format!(
                        "Mapping {from:?} has a weight {} that exceeds 100",
                        d.effective_weight()
                    ),
                );
            }
            if d.cluster.is_empty() {
                total += d.effective_weight();
            } else {
                let t = per_cluster.entry(d.cluster.as_str()).or_default();
                *t += d.effective_weight();
                if *t > 100 {
                    issues.add(
                        &dp,
                        format!(
                            "Mapping {from:?} in cluster {:?} exceeds 100% among all of it's weighted to mappings",
                            d.cluster
                        ),
                    );
                }
            }
        }
        if total > 100 {
            issues.add(
                &path,
                format!("Mapping {from:?} exceeds 100% among all of it's weighted to mappings"),
            );
        }
    }
}

fn validate_authorization(a: &ExternalAuthorization, issues: &mut Issues) {
    let p = "nats.authorization";
    if !a.allowed_accounts.is_empty() && a.auth_users.is_empty() {
        issues.add(
            p,
            "External authorization cannot have accounts without users specified",
        );
    }
    for u in &a.auth_users {
        if !is_public_key(u, KeyKind::User) {
            issues.add(
                &format!("{p}.auth_users"),
                format!("AuthUser {u:?} is not a valid user public key"),
            );
        }
    }
    for acc in &a.allowed_accounts {
        if acc == "*" {
            if a.allowed_accounts.len() > 1 {
                issues.add(
                    &format!("{p}.allowed_accounts"),
                    "AllowedAccounts can only be a list of accounts or \"*\"",
                );
            }
        } else if !is_public_key(acc, KeyKind::Account) {
            issues.add(
                &format!("{p}.allowed_accounts"),
                format!("Account {acc:?} is not a valid account public key"),
            );
        }
    }
    if !a.xkey.is_empty() && !is_public_key(&a.xkey, KeyKind::Curve) {
        issues.add(
            &format!("{p}.xkey"),
            format!("XKey {:?} is not a valid public xkey", a.xkey),
        );
    }
}

/// Problems that jwt 2.3.0 (inside nats-server 2.9.10) blocks on although
/// HEAD accepts them (facts §4.5, §4.7, §12): mapping destinations with
/// wildcards, mapping weights totalling over 100 across clusters, and
/// overlapping service imports from *different* accounts. Check these in
/// addition to [`Validate::validate`] when 2.9.x servers must load the account.
pub fn compat_issues_jwt_2_3(account: &AccountClaims) -> Vec<Issue> {
    let mut issues = Issues::default();
    for (from, dests) in &account.nats.mappings {
        let path = format!("nats.mappings[{from:?}]");
        let mut total = 0u32;
        for (i, d) in dests.iter().enumerate() {
            if has_wildcards(&d.subject) {
                issues.add(
                    &format!("{path}[{i}].subject"),
                    format!(
                        "Subject {:?} in weighted mapping {from:?} is not allowed to contains wildcard (jwt 2.3.0)",
                        d.subject
                    ),
                );
            }
            total += d.effective_weight();
        }
        if total > 100 {
            issues.add(
                &path,
                format!("Mapping {from:?} exceeds 100% across all clusters (jwt 2.3.0 adds every entry)"),
            );
        }
    }
    let locals: Vec<(usize, String)> = account
        .nats
        .imports
        .iter()
        .enumerate()
        .filter(|(_, i)| i.import_type == Some(super::exports::ExportType::Service))
        .map(|(n, i)| (n, service_import_local(i)))
        .collect();
    for (a, (ia, sa)) in locals.iter().enumerate() {
        for (ib, sb) in locals.iter().skip(a + 1) {
            let different = account.nats.imports[*ia].account != account.nats.imports[*ib].account;
            if different && (is_contained_in(sa, sb) || is_contained_in(sb, sa)) {
                issues.add(
                    &format!("nats.imports[{ib}]"),
                    format!("overlapping subject namespace for {sb:?} and {sa:?} (jwt 2.3.0 checks across accounts)"),
                );
            }
        }
    }
    issues.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::gojson::to_string;

    #[test]
    fn new_account_limits_match_go_written_form() {
        let c = AccountClaims::new("A");
        assert_eq!(
            to_string(&c.nats.limits),
            r#"{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}"#
        );
        assert_eq!(
            to_string(&c.nats),
            r#"{"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1},"default_permissions":{"pub":{},"sub":{}}}"#
        );
    }

    #[test]
    fn zero_limits_block_imports_exports_and_wildcards() {
        let mut c = AccountClaims::new(nkeys::KeyPair::new_account().public_key());
        c.nats.limits = OperatorLimits::default();
        c.nats.exports.push(Export {
            subject: "a.>".into(),
            export_type: Some(super::super::exports::ExportType::Stream),
            ..Default::default()
        });
        c.nats.imports.push(Import {
            subject: "b".into(),
            account: nkeys::KeyPair::new_account().public_key(),
            import_type: Some(super::super::exports::ExportType::Stream),
            ..Default::default()
        });
        assert_eq!(c.validate().len(), 3, "{:?}", c.validate());
    }

    #[test]
    fn signing_keys_sign_only_with_issuer_account_set() {
        let mut c = AccountClaims::new("A");
        c.nats.signing_keys.0.insert("SK".into(), None);
        assert!(c.did_sign("A", ""));
        assert!(c.did_sign("SK", "A"));
        assert!(!c.did_sign("SK", ""));
        assert!(!c.did_sign("OTHER", "A"));
    }

    #[test]
    fn revocation_counts_equal_iat_as_revoked() {
        let mut c = AccountClaims::new("A");
        c.nats.revocations.insert("U1".into(), 100);
        assert!(c.is_revoked("U1", 100));
        assert!(!c.is_revoked("U1", 101));
        assert!(!c.is_revoked("U2", 50));
        c.nats.revocations.insert("*".into(), 60);
        assert!(c.is_revoked("U2", 50));
    }

    #[test]
    fn mapping_weights_are_checked_per_cluster_and_for_2_3_across_clusters() {
        let mut c = AccountClaims::new(nkeys::KeyPair::new_account().public_key());
        c.nats.mappings.insert(
            "a".into(),
            vec![
                WeightedMapping {
                    subject: "b".into(),
                    weight: 100,
                    cluster: "c1".into(),
                },
                WeightedMapping {
                    subject: "c.*".into(),
                    weight: 100,
                    cluster: "c2".into(),
                },
            ],
        );
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(compat_issues_jwt_2_3(&c).len(), 2);
    }
}
