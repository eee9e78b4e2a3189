//! The manifest's serde model: what people write, in TOML or YAML.
//!
//! Both formats deserialize into these types. Unknown keys are errors
//! (`deny_unknown_fields`) so that a typo never silently drops a setting.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::duration::Duration;

/// The label a key-bearing object gets when the manifest names none.
pub const DEFAULT_KEY_LABEL: &str = "v1";

fn default_label() -> String {
    DEFAULT_KEY_LABEL.to_string()
}

fn default_labels() -> Vec<String> {
    vec![default_label()]
}

/// The whole desired state.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Who can decrypt the seeds in the vault.
    #[serde(default)]
    pub secrets: Secrets,
    /// Where the JWT store lives, relative to the manifest (default `store`).
    #[serde(default)]
    pub store: Option<String>,
    /// Where the encrypted seeds live, relative to the manifest (default `vault`).
    #[serde(default)]
    pub vault: Option<String>,
    /// Operators by name.
    #[serde(default)]
    pub operators: BTreeMap<String, Operator>,
}

/// Recipients of the age-encrypted seeds.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// age X25519 (`age1…`) or SSH (`ssh-ed25519 …`, `ssh-rsa …`) public keys.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// An operator: the root of a trust tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// Label of the operator's identity key; change it to replace the key.
    #[serde(default = "default_label")]
    pub key: String,
    /// Labels of operator signing keys. The first signs accounts; the others
    /// stay trusted (useful during a two-step rotation).
    #[serde(default)]
    pub signing_keys: Vec<String>,
    /// Name of the account (declared below) that is the system account.
    #[serde(default)]
    pub system_account: Option<String>,
    /// Only signing keys may sign accounts, and only account signing keys may
    /// sign users.
    #[serde(default)]
    pub strict_signing_key_usage: bool,
    /// Operator service URLs (`nats://…`, `tls://…`) clients use to connect.
    #[serde(default)]
    pub service_urls: Vec<String>,
    /// Account server URL (`nats://…` for the nats-based resolver).
    #[serde(default)]
    pub account_server_url: Option<String>,
    /// Accounts by name.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
}

/// An account of an operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Label of the account's identity key; change it to replace the key.
    #[serde(default = "default_label")]
    pub key: String,
    /// Signing keys by role name: a role with permissions is a scoped
    /// signing key; one without is a plain signing key.
    #[serde(default)]
    pub signing_keys: BTreeMap<String, SigningKey>,
    /// Tags (`key:value`), used by `{{account-tag(key)}}` templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Users by name.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

/// An account signing key role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Labels of the keys of this role. The first signs users; the others
    /// stay trusted. Rename a label to rotate the key.
    #[serde(default = "default_labels")]
    pub keys: Vec<String>,
    /// Force a scoped key even without permissions (users then get none).
    #[serde(default)]
    pub scoped: bool,
    /// Description written into the scope.
    #[serde(default)]
    pub description: Option<String>,
    /// Publish permissions of users signed by this role.
    #[serde(default, rename = "pub")]
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions of users signed by this role.
    #[serde(default, rename = "sub")]
    pub subscribe: Option<SubjectPermission>,
    /// Response permissions of users signed by this role.
    #[serde(default)]
    pub resp: Option<ResponsePermission>,
}

impl SigningKey {
    /// Whether this role is a scoped signing key (carries a permission template).
    pub fn is_scoped(&self) -> bool {
        self.scoped || self.publish.is_some() || self.subscribe.is_some() || self.resp.is_some()
    }
}

/// A user of an account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Label of the user's identity key; change it to replace the key.
    #[serde(default = "default_label")]
    pub key: String,
    /// Bring-your-own key: the user's public key (`U…`). natsform then never
    /// holds the user's seed and cannot produce creds for it.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Role name of the account signing key that signs this user. Default:
    /// the account's identity key.
    #[serde(default)]
    pub signer: Option<String>,
    /// Tags (`key:value`), used by `{{tag(key)}}` templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Publish permissions (not allowed when signed by a scoped role).
    #[serde(default, rename = "pub")]
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions (not allowed when signed by a scoped role).
    #[serde(default, rename = "sub")]
    pub subscribe: Option<SubjectPermission>,
    /// Response permissions (not allowed when signed by a scoped role).
    #[serde(default)]
    pub resp: Option<ResponsePermission>,
}

impl User {
    /// Whether the user declares any permission of its own.
    pub fn has_permissions(&self) -> bool {
        self.publish.is_some() || self.subscribe.is_some() || self.resp.is_some()
    }
}

/// Allow and deny subject lists.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubjectPermission {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Permission to publish to reply subjects of received requests.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResponsePermission {
    /// How many responses may be sent per request (default 1).
    #[serde(default)]
    pub max: Option<i64>,
    /// How long the reply subject stays publishable (e.g. `1m`).
    #[serde(default)]
    pub ttl: Option<Duration>,
}
