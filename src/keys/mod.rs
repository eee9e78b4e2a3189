//! nkeys and their secrets: generation, the age-encrypted seed vault, the
//! identities that open it, the recipients it is encrypted to, and the lock
//! file that binds key addresses to public keys.
//!
//! This module never prints and never prompts; all user-facing wording is in
//! [`KeysError`]. Secret material (seeds, age secret keys) never appears in
//! errors or `Debug` output and is never written to disk unencrypted.

mod bundle;
mod error;
mod identity;
mod kind;
mod lock;
mod recipients;
mod vault;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bundle;
#[cfg(test)]
mod tests_lock;

pub use bundle::{
    index_text, parse_index, seal as seal_bundle, SeedLine, UserSeeds, BUNDLE_SUFFIX, INDEX_SUFFIX,
    MAX_BUNDLE_FILE_BYTES,
};
pub use error::{KeysError, Result};
pub use identity::{default_identity_file, sops_identity_file, Identities, IdentitySources};
pub(crate) use kind::is_valid_public_key;
pub use kind::{generate, kind_of_public_key, KeyKind};
pub use lock::{DeletedAccounts, Lock, Revocations};
pub use recipients::Recipients;
pub(crate) use vault::VAULT_FILE_MODE;
pub use vault::{Examined, Sealed, Vault};

/// Re-exported: the key pair type every API here takes and returns.
pub use nkeys::KeyPair;

/// The file name suffix of seed files (`.age`).
pub fn vault_suffix() -> &'static str {
    vault::VAULT_SUFFIX
}
