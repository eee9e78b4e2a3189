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

/// Prefix of the text that stands for a key apply will generate.
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
