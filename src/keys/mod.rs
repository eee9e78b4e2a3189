//! nkeys and their secrets: generation, the age-encrypted seed vault, the
//! identities that open it, the recipients it is encrypted to, and the lock
//! file that binds key addresses to public keys.
//!
//! This module never prints and never prompts; all user-facing wording is in
//! [`KeysError`]. Secret material (seeds, age secret keys) never appears in
//! errors or `Debug` output and is never written to disk unencrypted.

mod error;
mod identity;
mod kind;
mod lock;
mod recipients;
mod vault;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lock;

pub use error::{KeysError, Result, ENV_IDENTITY_FILE, ENV_IDENTITY_KEY};
pub use identity::{Identities, IdentitySources};
pub use kind::{generate, is_valid_public_key, kind_of_key_pair, kind_of_public_key, KeyKind};
pub use lock::{DeletedAccounts, Lock, Revocations, LOCK_FILE_NAME, LOCK_VERSION};
pub use recipients::Recipients;
pub use vault::{Vault, VAULT_SUFFIX};

/// Re-exported so callers can build [`IdentitySources`] without naming age.
pub use age::secrecy::SecretString;
/// Re-exported: the key pair type every API here takes and returns.
pub use nkeys::KeyPair;
