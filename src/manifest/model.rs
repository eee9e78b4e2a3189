//! The manifest's serde model: what people write, in TOML or YAML.
//!
//! Both formats deserialize into these types. Unknown keys are errors
//! (`deny_unknown_fields`) so that a typo never silently drops a setting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::units::{Expiry, Timestamp};

pub use super::model_limits::{
    AccountLimits, ConnectionType, JetStream, Permissions, TimeWindow, UserLimits,
};
pub use super::model_wiring::{
    Authorization, Export, ExportKind, HeadersWord, Import, Latency, Mapping, ResponseType,
    Sampling,
};

/// The label a key-bearing object gets when the manifest names none.
pub const DEFAULT_KEY_LABEL: &str = "v1";

fn default_label() -> String {
    DEFAULT_KEY_LABEL.to_string()
}

fn default_labels() -> Vec<String> {
    vec![default_label()]
}

// What `skip_serializing_if` leaves out, so a serialised manifest reads
// like a hand-written one (only what differs from the defaults).
fn is_default_label(label: &str) -> bool {
    label == DEFAULT_KEY_LABEL
}

fn is_default_labels(labels: &[String]) -> bool {
    labels.len() == 1 && is_default_label(&labels[0])
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A natsform manifest: the desired NATS decentralized-auth trust tree
/// (operators, accounts, signing-key roles, users).
#[derive(Debug, Clone, Deserialize, Serialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Who can decrypt the seeds in the vault.
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
    /// Where the JWT store lives, relative to the manifest (default `store`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub store: Option<String>,
    /// Where the encrypted seeds live, relative to the manifest (default `vault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub vault: Option<String>,
    /// How long before a relative expiry (`expires = "90d"`) the plan
    /// re-issues a JWT (default `30d`). Also the warning window for fixed
    /// expiry dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue_before: Option<Duration>,
    /// Operators by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operators: BTreeMap<String, Operator>,
}

/// Recipients of the age-encrypted seeds.
#[derive(Debug, Clone, Deserialize, Serialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// age X25519 (`age1…`) or SSH (`ssh-ed25519 …`, `ssh-rsa …`) public keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub recipients: Vec<String>,
}

impl Secrets {
    /// True when no recipient is named.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }
}

/// An operator: the root of a trust tree.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// Label of the operator's identity key; change it to replace the key.
    #[serde(default = "default_label", skip_serializing_if = "is_default_label")]
    #[schemars(extend("default" = "v1"))]
    pub key: String,
    /// Labels of operator signing keys. The first signs accounts; the others
    /// stay trusted (useful during a two-step rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub signing_keys: Vec<String>,
    /// Name of the account (declared below) that is the system account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub system_account: Option<String>,
    /// Only signing keys may sign accounts, and only account signing keys may
    /// sign users.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub strict_signing_key_usage: bool,
    /// Operator service URLs (`nats://…`, `tls://…`) clients use to connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub service_urls: Vec<String>,
    /// Account server URL (`nats://…` for the nats-based resolver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub account_server_url: Option<String>,
    /// Oldest nats-server version (`major.minor.patch`) allowed to trust
    /// this operator; older servers refuse to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub assert_server_version: Option<String>,
    /// Tags (`key:value`) on the operator JWT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub tags: Vec<String>,
    /// When the operator JWT expires: a duration after each issue (`90d`), an
    /// RFC 3339 date-time or a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expiry>,
    /// The servers apply pushes this operator's account JWTs to (their
    /// full, nats-based resolver), and `plan --live` reads back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Resolver>,
    /// Accounts by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, Account>,
}

/// Where and how to deploy an operator's accounts: nats-servers running a
/// full (nats-based) resolver, reached as a system-account user.
#[derive(Debug, Clone, Deserialize, Serialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolver {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`); one server of a
    /// cluster is enough, every server answering the system subjects is
    /// reached through it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub urls: Vec<String>,
    /// How long to wait for a connection (default `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// How long to wait for the servers' replies to one request (default `2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// TLS files, relative to the manifest and inside its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ResolverTls>,
    /// How many servers must acknowledge each account (default: every
    /// server that answers `$SYS.REQ.SERVER.PING`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub acks: Option<u32>,
}

/// TLS files for reaching the resolver's servers.
#[derive(Debug, Clone, Deserialize, Serialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolverTls {
    /// PEM file of the certificate authorities to trust (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub ca: Option<String>,
    /// PEM file of the client certificate (with `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub cert: Option<String>,
    /// PEM file of the client certificate's private key (with `cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub key: Option<String>,
}

/// An account of an operator.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Label of the account's identity key; change it to replace the key.
    #[serde(default = "default_label", skip_serializing_if = "is_default_label")]
    #[schemars(extend("default" = "v1"))]
    pub key: String,
    /// Signing keys by role name: a role with permissions is a scoped
    /// signing key; one without is a plain signing key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signing_keys: BTreeMap<String, SigningKey>,
    /// Tags (`key:value`), used by `{{account-tag(key)}}` templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub tags: Vec<String>,
    /// Free text shown by `nsc describe` and the like (at most 8 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub description: Option<String>,
    /// A URL with more information (needs a scheme and a host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub info_url: Option<String>,
    /// When the account JWT expires: a duration after each issue (`90d`), an
    /// RFC 3339 date-time or a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expiry>,
    /// NATS limits of the account. Omitted limits are unlimited, as
    /// `nsc add account` makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AccountLimits>,
    /// JetStream limits of the account (enables JetStream). Exclusive with
    /// `jetstream_tiers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetstream: Option<JetStream>,
    /// JetStream limits per replication tier (`R1`, `R3`, …). Exclusive with
    /// `jetstream`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jetstream_tiers: BTreeMap<String, JetStream>,
    /// Permissions for users of this account that carry none of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Permissions>,
    /// Subject mappings: source subject → weighted destinations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mappings: BTreeMap<String, Vec<Mapping>>,
    /// Subjects other accounts may import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<Export>,
    /// Subjects imported from other accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<Import>,
    /// Revoked users: user public key (or `*` for all users) → users issued
    /// at or before this time are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, Timestamp>,
    /// Auth callout (nats-server 2.10+): users connecting to this account are
    /// authorized by a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Users by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, User>,
}

/// An account signing key role.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Labels of the keys of this role. The first signs users; the others
    /// stay trusted. Rename a label to rotate the key.
    #[serde(default = "default_labels", skip_serializing_if = "is_default_labels")]
    #[schemars(extend("default" = ["v1"]))]
    pub keys: Vec<String>,
    /// Force a scoped key even without permissions (users then get none).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub scoped: bool,
    /// Description written into the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub description: Option<String>,
    /// Publish permissions of users signed by this role.
    #[serde(default, rename = "pub", skip_serializing_if = "Option::is_none")]
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions of users signed by this role.
    #[serde(default, rename = "sub", skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubjectPermission>,
    /// Response permissions of users signed by this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
    /// Networks (CIDRs such as `10.0.0.0/8`, `1.2.3.4/32`) users of this role may connect from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub src: Vec<String>,
    /// Daily windows in which users of this role may connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeWindow>,
    /// IANA time zone of `times` (e.g. `Europe/Berlin`); default: the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub locale: Option<String>,
    /// Subscription and payload limits of users of this role (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UserLimits>,
    /// Users of this role are bearer tokens: the server does not check a
    /// nonce signature, so the JWT alone authenticates.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub bearer_token: bool,
    /// Connection types users of this role may use; empty allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<ConnectionType>,
}

impl SigningKey {
    /// Whether this role is a scoped signing key (carries a permission template).
    pub fn is_scoped(&self) -> bool {
        self.scoped
            || self.publish.is_some()
            || self.subscribe.is_some()
            || self.resp.is_some()
            || !self.rules().is_empty()
    }

    /// The connection rules of the role's template.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            src: &self.src,
            times: &self.times,
            locale: self.locale.as_deref(),
            limits: self.limits.as_ref(),
            bearer_token: self.bearer_token,
            allowed_connection_types: &self.allowed_connection_types,
        }
    }
}

/// A user of an account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Label of the user's identity key; change it to replace the key.
    #[serde(default = "default_label", skip_serializing_if = "is_default_label")]
    #[schemars(extend("default" = "v1"))]
    pub key: String,
    /// Bring-your-own key: the user's public key (`U…`). natsform then never
    /// holds the user's seed and cannot produce creds for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub public_key: Option<String>,
    /// Role name of the account signing key that signs this user. Default:
    /// the account's identity key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub signer: Option<String>,
    /// Tags (`key:value`), used by `{{tag(key)}}` templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub tags: Vec<String>,
    /// Publish permissions (not allowed when signed by a scoped role).
    #[serde(default, rename = "pub", skip_serializing_if = "Option::is_none")]
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions (not allowed when signed by a scoped role).
    #[serde(default, rename = "sub", skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubjectPermission>,
    /// Response permissions (not allowed when signed by a scoped role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
    /// Networks (CIDRs such as `10.0.0.0/8`, `1.2.3.4/32`) the user may connect from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub src: Vec<String>,
    /// Daily windows in which the user may connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeWindow>,
    /// IANA time zone of `times` (e.g. `Europe/Berlin`); default: the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub locale: Option<String>,
    /// Subscription and payload limits (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UserLimits>,
    /// The user is a bearer token: the server does not check a nonce
    /// signature, so the JWT alone authenticates.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub bearer_token: bool,
    /// Connection types the user may use; empty allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<ConnectionType>,
    /// When the user JWT expires: a duration after each issue (`90d`), an
    /// RFC 3339 date-time or a date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expiry>,
}

impl User {
    /// The first permission or connection-rule field the user sets itself
    /// (none is allowed under a scoped role), as its manifest key.
    pub fn own_permission_field(&self) -> Option<&'static str> {
        let r = self.rules();
        [
            ("pub", self.publish.is_some()),
            ("sub", self.subscribe.is_some()),
            ("resp", self.resp.is_some()),
            ("src", !r.src.is_empty()),
            ("times", !r.times.is_empty()),
            ("locale", r.locale.is_some()),
            ("limits", r.limits.is_some()),
            ("bearer_token", r.bearer_token),
            (
                "allowed_connection_types",
                !r.allowed_connection_types.is_empty(),
            ),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(field, _)| field)
    }

    /// Whether the user declares any permission or connection rule of its own.
    pub fn has_permissions(&self) -> bool {
        self.own_permission_field().is_some()
    }

    /// The user's own connection rules.
    pub fn rules(&self) -> Rules<'_> {
        Rules {
            src: &self.src,
            times: &self.times,
            locale: self.locale.as_deref(),
            limits: self.limits.as_ref(),
            bearer_token: self.bearer_token,
            allowed_connection_types: &self.allowed_connection_types,
        }
    }
}

/// The connection rules a user or a scoped role's template carries besides
/// permissions: where from, when, how much, and how.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub src: &'a [String],
    pub times: &'a [TimeWindow],
    pub locale: Option<&'a str>,
    pub limits: Option<&'a UserLimits>,
    pub bearer_token: bool,
    pub allowed_connection_types: &'a [ConnectionType],
}

impl Rules<'_> {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
            && self.times.is_empty()
            && self.locale.is_none()
            && self.limits.is_none()
            && !self.bearer_token
            && self.allowed_connection_types.is_empty()
    }
}

/// Allow and deny subject lists.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectPermission {
    /// Subjects allowed (wildcards allowed; `sub` entries may be `subject queue`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub allow: Vec<String>,
    /// Subjects denied, even when an `allow` entry matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub deny: Vec<String>,
}

/// Permission to publish to reply subjects of received requests.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsePermission {
    /// How many responses may be sent per request (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub max: Option<i64>,
    /// How long the reply subject stays publishable (e.g. `1m`); written
    /// to the JWT in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
}
