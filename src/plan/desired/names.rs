//! Manifest names that stand for public keys (`from = "A"`, auth users,
//! allowed accounts), resolved within one operator.

use std::collections::BTreeMap;

use crate::plan::keyref::KeyRef;

/// The keys of one operator's accounts and users, by manifest name.
#[derive(Debug, Default)]
pub(super) struct OperatorNames {
    pub accounts: BTreeMap<String, KeyRef>,
    /// `(account, user)` → the user's key.
    pub users: BTreeMap<(String, String), KeyRef>,
}

impl OperatorNames {
    /// The public key (or placeholder) of account `name`.
    pub fn account(&self, name: &str) -> Option<String> {
        self.accounts.get(name).map(KeyRef::value)
    }

    /// An account name, `*` or a public key: names become keys, the rest
    /// stays as written (validation has vetted it).
    pub fn account_or_key(&self, text: &str) -> String {
        self.account(text).unwrap_or_else(|| text.to_string())
    }

    /// A user of `account` by name, or a public key as written.
    pub fn user_or_key(&self, account: &str, text: &str) -> String {
        self.users
            .get(&(account.to_string(), text.to_string()))
            .map(KeyRef::value)
            .unwrap_or_else(|| text.to_string())
    }
}
