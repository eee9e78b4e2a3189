//! How accounts connect in the manifest: exports, imports (by account name
//! or external key), subject mappings and auth callout.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::is_false;

use super::duration::Duration;
use super::units::Timestamp;

/// `stream` (messages flow to the importer) or `service` (requests flow to the exporter).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// Messages published in the exporter are delivered to importers.
    Stream,
    /// Requests from importers reach the exporter, which replies.
    Service,
}

impl ExportKind {
    /// The name NATS uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Stream => "stream",
            ExportKind::Service => "service",
        }
    }
}

/// How a service answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ResponseType {
    /// One reply (the default).
    Singleton,
    /// Any number of replies.
    Stream,
    /// One reply in several messages.
    Chunked,
}

impl ResponseType {
    /// The name NATS uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Singleton => "Singleton",
            ResponseType::Stream => "Stream",
            ResponseType::Chunked => "Chunked",
        }
    }
}

/// A subject this account offers to other accounts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub name: Option<String>,
    /// The exported subject (wildcards allowed).
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: ExportKind,
    /// Importers need an activation token from this account (`token_req`).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub private: bool,
    /// Services only: `Singleton` (default), `Stream` or `Chunked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<ResponseType>,
    /// Services only: how long responses may take (e.g. `5s`); written in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_threshold: Option<Duration>,
    /// Services only: publish latency measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// 1-based token of the subject that must be `*` and equal the
    /// importer's account public key; importers then need no activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub account_token_position: Option<u32>,
    /// List the export publicly.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub advertise: bool,
    /// Services only: allow message tracing across the export (nats-server 2.11+).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub allow_trace: bool,
    /// Free text (at most 8 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub description: Option<String>,
    /// A URL with more information (needs a scheme and a host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub info_url: Option<String>,
    /// Revoked activations: importer account public key (or `*`) →
    /// activations issued at or before this time are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, Timestamp>,
}

/// Service latency tracking.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Percentage of requests measured (1–100, default 100), or `headers`
    /// to let requesters decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// Subject the measurements are published to (no wildcards).
    pub results: String,
}

/// A latency sampling rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Sampling {
    /// Percentage, 1–100.
    Percent(u32),
    /// `headers`: requesters opt in with a header.
    Headers(HeadersWord),
}

/// The word `headers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeadersWord {
    /// Requesters opt in with a header.
    Headers,
}

/// A subject taken from another account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Import {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub name: Option<String>,
    /// The subject as the exporting account exports it (or a narrower one).
    pub subject: String,
    /// The exporting account, by its name under the same operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub from: Option<String>,
    /// The exporting account's public key (`A…`), for accounts outside this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub account: Option<String>,
    /// With `account`: the activation token (a JWT) the exporter issued
    /// for a private export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub token: Option<String>,
    /// The subject in this account (default: `subject`); may use `$1`, `$2`
    /// for the `*` tokens of `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub local_subject: Option<String>,
    /// `stream` or `service`; must match the export.
    #[serde(rename = "type")]
    pub kind: ExportKind,
    /// Services only: share latency data with the exporter.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub share: bool,
    /// Streams only: allow message tracing across the import (nats-server 2.11+).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub allow_trace: bool,
}

impl Import {
    /// The subject the import occupies in the importing account.
    pub fn local(&self) -> &str {
        self.local_subject.as_deref().unwrap_or(&self.subject)
    }
}

/// One destination of a subject mapping.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Destination subject; may use `$1` or `{{wildcard(1)}}` for the source's
    /// `*` tokens, but no wildcards (nats-server 2.9 refuses them).
    pub subject: String,
    /// Share of messages in percent, 1–100 (default 100). The weights of one
    /// source may total at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub weight: Option<u32>,
    /// Apply this destination only in this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub cluster: Option<String>,
}

/// Auth callout settings (nats-server 2.10+).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Users that bypass the callout (the auth service itself): names of
    /// users of this account, or user public keys (`U…`).
    pub auth_users: Vec<String>,
    /// Accounts the service may place users in: account names under the
    /// same operator, account public keys, or `*` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub allowed_accounts: Vec<String>,
    /// Curve public key (`X…`) requests to the service are encrypted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub xkey: Option<String>,
}
