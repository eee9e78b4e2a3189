//! Activation claims (`nats.type = "activation"`): the token that lets one
//! account import another's private export. Mirrors `jwt/v2/activation_claims.go`.

use super::exports::ExportType;
use super::gojson::nullable;
use super::jwt::{ActivationClaims, ClaimPayload, Claims, GenericFields};
use super::keys::{is_public_key, KeyKind};
use super::validate::{check_subject, Issue, Issues, Validate};
use serde::{Deserialize, Serialize};

/// The activation's `nats` object: `subject, kind, issuer_account, tags,
/// type, version`. Note `kind`, not `type`, for stream/service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Activation {
    /// The exported subject granted (may be narrower than the export).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `stream` or `service`; must equal the import's type.
    pub kind: Option<ExportType>,
    /// The exporter's account key when one of its signing keys signed.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub issuer_account: String,
    #[serde(flatten)]
    /// `tags`, `type`, `version`.
    pub generic: GenericFields,
}

impl ClaimPayload for Activation {
    const CLAIM_TYPE: &'static str = "activation";
    /// The importing account.
    const SUBJECT_KIND: KeyKind = KeyKind::Account;
    /// The exporting account or one of its signing keys (servers reject
    /// operator-signed activations in practice, so natsform never makes them).
    const ENCODE_SIGNERS: &'static [KeyKind] = &[KeyKind::Account];
    const DECODE_ISSUERS: &'static [KeyKind] = &[KeyKind::Account, KeyKind::Operator];

    fn generic(&self) -> &GenericFields {
        &self.generic
    }
    fn generic_mut(&mut self) -> &mut GenericFields {
        &mut self.generic
    }
}

impl Claims<Activation> {
    /// Go `NewActivationClaims(subject)`; `subject` is the importing account.
    pub fn new(importer: impl Into<String>) -> ActivationClaims {
        let mut c = ActivationClaims::default();
        c.data.sub = importer.into();
        c
    }
}

/// Go `Activation.Validate` plus the `issuer_account` check, without time checks.
pub(crate) fn validate_activation_payload(a: &Activation, prefix: &str, issues: &mut Issues) {
    if a.kind.is_none() {
        issues.add(
            &format!("{prefix}.kind"),
            "invalid import type: \"unknown\"",
        );
    }
    check_subject(issues, &format!("{prefix}.subject"), &a.subject);
    if !a.issuer_account.is_empty() && !is_public_key(&a.issuer_account, KeyKind::Account) {
        issues.add(
            &format!("{prefix}.issuer_account"),
            "account_id is not an account public key",
        );
    }
}

impl Validate for ActivationClaims {
    /// Go `ActivationClaims.Validate`, blocking errors only.
    fn validate(&self) -> Vec<Issue> {
        let mut issues = Issues::default();
        validate_activation_payload(&self.nats, "nats", &mut issues);
        issues.0
    }
}
