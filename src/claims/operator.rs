//! Operator claims (`nats.type = "operator"`), mirroring `jwt/v2/operator_claims.go`.

use super::error::ClaimsError;
use super::gojson::{is_false, nullable};
use super::jwt::{ClaimPayload, Claims, GenericFields, OperatorClaims};
use super::keys::{is_public_key, KeyKind};
use super::permissions::join;
use super::validate::{GoUrl, Issue, Issues, Validate};
use serde::{Deserialize, Serialize};

/// The operator's `nats` object. Key order: `signing_keys,
/// account_server_url, operator_service_urls, system_account,
/// assert_server_version, strict_signing_key_usage, tags, type, version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Operator {
    /// Operator public keys (`O…`) that may sign accounts.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub signing_keys: Vec<String>,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// URL with a scheme; nsc treats nats/tls/ws(s) URLs as the push target.
    pub account_server_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    /// Server URLs (`nats`, `tls`, `ws`, `wss`; no user, no path).
    pub operator_service_urls: Vec<String>,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// The system account's public key.
    pub system_account: String,
    /// `major.minor.update`; older servers refuse to start.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub assert_server_version: String,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// Only signing keys may sign accounts.
    pub strict_signing_key_usage: bool,
    #[serde(flatten)]
    /// `tags`, `type`, `version`.
    pub generic: GenericFields,
}

impl ClaimPayload for Operator {
    const CLAIM_TYPE: &'static str = "operator";
    const SUBJECT_KIND: KeyKind = KeyKind::Operator;
    const ENCODE_SIGNERS: &'static [KeyKind] = &[KeyKind::Operator];
    const DECODE_ISSUERS: &'static [KeyKind] = &[KeyKind::Operator];

    fn generic(&self) -> &GenericFields {
        &self.generic
    }
    fn generic_mut(&mut self) -> &mut GenericFields {
        &mut self.generic
    }
    /// Go's `OperatorClaims.Encode` refuses a bad account server URL.
    fn prepare_encode(&mut self) -> Result<(), ClaimsError> {
        match account_server_url_error(&self.account_server_url) {
            Some(e) => Err(ClaimsError::Unencodable(e)),
            None => Ok(()),
        }
    }
}

impl Claims<Operator> {
    /// Go `NewOperatorClaims(subject)`: everything else empty.
    pub fn new(subject: impl Into<String>) -> OperatorClaims {
        let mut c = OperatorClaims::default();
        c.data.sub = subject.into();
        c
    }

    /// Go `OperatorClaims.DidSign`: a signing key, or the identity key —
    /// which under `strict_signing_key_usage` may only sign the operator itself.
    pub fn did_sign(&self, issuer: &str, subject: &str) -> bool {
        if issuer == self.data.sub {
            return !self.nats.strict_signing_key_usage || subject == self.data.sub;
        }
        self.nats.signing_keys.iter().any(|k| k == issuer)
    }
}

fn account_server_url_error(url: &str) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    match GoUrl::parse(url) {
        Err(e) => Some(format!("error parsing account server url: {e}")),
        Ok(u) if u.scheme.is_empty() => {
            Some(format!("account server url {url:?} requires a protocol"))
        }
        Ok(_) => None,
    }
}

/// Go `ValidateOperatorServiceURL` (HEAD: `nats`, `tls`, `ws`, `wss`; jwt
/// 2.3.0 accepts only `nats` and `tls`, but servers never validate operators).
fn service_url_error(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let u = match GoUrl::parse(v) {
        Ok(u) => u,
        Err(e) => return Some(format!("error parsing operator service url {v:?}: {e}")),
    };
    if u.has_user {
        return Some(format!(
            "operator service url {v:?} - credentials are not supported"
        ));
    }
    if !u.path.is_empty() {
        return Some(format!(
            "operator service url {v:?} - paths are not supported"
        ));
    }
    match u.scheme.as_str() {
        "nats" | "tls" | "ws" | "wss" => None,
        _ => Some(format!(
            "operator service url {v:?} - protocol not supported (only 'nats', 'tls', 'ws', 'wss' only)"
        )),
    }
}

/// Go `ParseServerVersion`: empty, or three non-negative integers.
fn server_version_error(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3 {
        return Some("asserted server version must be of the form <major>.<minor>.<update>".into());
    }
    for p in parts {
        // strconv.Atoi accepts an optional sign, like Rust's parse.
        match p.parse::<i64>() {
            Err(_) => return Some(format!("asserted server version cant parse {p} to int")),
            Ok(n) if n < 0 => {
                return Some(format!(
                    "asserted server version can'b contain negative values: {v}"
                ))
            }
            Ok(_) => {}
        }
    }
    None
}

impl Validate for OperatorClaims {
    /// Go `Operator.Validate` (HEAD).
    fn validate(&self) -> Vec<Issue> {
        let n = &self.nats;
        let mut issues = Issues::default();
        if let Some(e) = account_server_url_error(&n.account_server_url) {
            issues.add("nats.account_server_url", e);
        }
        for (i, u) in n.operator_service_urls.iter().enumerate() {
            if let Some(e) = service_url_error(u) {
                issues.add(&format!("nats.operator_service_urls[{i}]"), e);
            }
        }
        for (i, k) in n.signing_keys.iter().enumerate() {
            if !is_public_key(k, KeyKind::Operator) {
                issues.add(
                    &format!("nats.signing_keys[{i}]"),
                    format!("{k} is not an operator public key"),
                );
            }
        }
        if !n.system_account.is_empty() && !is_public_key(&n.system_account, KeyKind::Account) {
            issues.add(
                &join("nats", "system_account"),
                format!("{} is not an account public key", n.system_account),
            );
        }
        if let Some(e) = server_version_error(&n.assert_server_version) {
            issues.add(
                "nats.assert_server_version",
                format!("assert server version error: {e}"),
            );
        }
        issues.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_operators_sign_accounts_only_with_signing_keys() {
        let mut op = OperatorClaims::new("O");
        op.nats.signing_keys.push("OSK".into());
        assert!(op.did_sign("O", "A"));
        assert!(op.did_sign("OSK", "A"));
        op.nats.strict_signing_key_usage = true;
        assert!(!op.did_sign("O", "A"));
        assert!(op.did_sign("O", "O"));
        assert!(!op.did_sign("X", "A"));
    }

    #[test]
    fn server_versions_need_three_numbers() {
        assert!(server_version_error("2.9.10").is_none());
        assert!(server_version_error("2.9").is_some());
        assert!(server_version_error("2.x.1").is_some());
        assert!(server_version_error("2.-1.1").is_some());
    }

    #[test]
    fn service_urls_are_scheme_host_port_only() {
        assert!(service_url_error("nats://127.0.0.1:4222").is_none());
        assert!(service_url_error("wss://h:443").is_none());
        assert!(service_url_error("http://h").is_some());
        assert!(service_url_error("nats://u:p@h").is_some());
        assert!(service_url_error("nats://h/path").is_some());
    }

    #[test]
    fn account_server_url_needs_a_scheme() {
        // Go parses `localhost:9090` as scheme `localhost`, so only a bare host fails.
        assert!(account_server_url_error("localhost").is_some());
        assert!(account_server_url_error("/jwt/v1").is_some());
        assert!(account_server_url_error("http://localhost:9090/jwt/v1").is_none());
    }
}
