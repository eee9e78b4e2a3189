//! Keys as the planner sees them: an address, and the public key when the
//! lock already binds one.

use std::collections::BTreeMap;

use crate::keys::KeyKind;

/// A key named by its address (`account.O2/A#v1`), bound or still to be generated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRef {
    pub address: String,
    pub kind: KeyKind,
    /// The public key, when the lock (or a bring-your-own key) provides it.
    pub public: Option<String>,
}

/// Prefix of the text that stands, in claims a plan shows, for a key apply
/// will generate (the key itself is a `KeyRef` without a public key).
pub const NEW_KEY_PREFIX: &str = "(new key ";

impl KeyRef {
    /// The public key, or a placeholder naming the key that apply will generate.
    pub fn value(&self) -> String {
        match &self.public {
            Some(p) => p.clone(),
            None => format!("{NEW_KEY_PREFIX}{})", self.address),
        }
    }
}

/// Key address → public key, as recorded in the lock.
pub type KeyBook = BTreeMap<String, String>;

/// Stands for an activation token natsform issues at apply time, in desired
/// import claims as a plan shows and compares them; a stored token that
/// grants exactly what is expected is shown (and compared) as this too.
/// Apply finds where a token goes by [`ExpectedActivation::import`], never
/// by looking for this text.
pub const ACTIVATION_PLACEHOLDER: &str = "(activation token issued by natsform)";

/// An activation token an importing account must embed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedActivation {
    /// Where the token goes: the index of the import in the importer's
    /// desired claims (= in its manifest `imports` list).
    pub import: usize,
    /// The import's subject (the token's `nats.subject` and `name`).
    pub subject: String,
    /// `stream` or `service`.
    pub kind: String,
    /// The importing account's identity key (the token's `sub`).
    pub importer: KeyRef,
    /// The exporting account's identity key.
    pub exporter: KeyRef,
    /// The exporter's key that signs the token.
    pub signer: KeyRef,
}
