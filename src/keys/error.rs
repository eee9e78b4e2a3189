//! Typed errors for key generation, the seed vault, identities, recipients
//! and the lock file.
//!
//! Every message says what went wrong, where (file, address, list entry) and
//! how to fix it. No variant ever carries secret material: seeds and age
//! secret keys are never part of an error, and user-supplied strings that may
//! be secrets are reduced to a short prefix.

use std::path::PathBuf;

use crate::keys::kind::KeyKind;
use thiserror::Error;

/// Environment variable naming an age identity file.
pub const ENV_IDENTITY_FILE: &str = "NATSFORM_AGE_IDENTITY";
/// Environment variable holding age identities (`AGE-SECRET-KEY-1…` lines).
pub const ENV_IDENTITY_KEY: &str = "NATSFORM_AGE_KEY";
/// sops's variable naming an age identity file, read after natsform's own.
pub const ENV_SOPS_KEY_FILE: &str = "SOPS_AGE_KEY_FILE";
/// sops's variable holding age identities, read after natsform's own.
pub const ENV_SOPS_KEY: &str = "SOPS_AGE_KEY";

/// Shown wherever a recipient is rejected, so the fix is always on screen.
const RECIPIENT_FORMS: &str = "accepted forms: an age X25519 public key `age1…` \
(print it with `age-keygen -y KEYFILE`), or an SSH public key `ssh-ed25519 AAAA…` \
or `ssh-rsa AAAA…` (one line of ~/.ssh/id_ed25519.pub)";

/// Shown wherever an identity cannot be used.
const IDENTITY_FORMS: &str = "an identity is an age identity file (lines \
`AGE-SECRET-KEY-1…`, `#` comments allowed, as written by `age-keygen`) or an \
unencrypted OpenSSH private key (ed25519 or rsa)";

/// Everything that can go wrong in `crate::keys`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeysError {
    /// A string that should be an nkey public key is not one.
    #[error("{context}: `{shown}` is not a valid {expected} public key (56 characters, starting with {prefixes})")]
    InvalidPublicKey {
        /// Where the value came from (e.g. a vault file or lock address).
        context: String,
        /// At most a short prefix of the offending value.
        shown: String,
        /// Human name of the accepted kinds ("operator", "nkey", …).
        expected: &'static str,
        /// Accepted first letters, e.g. "O, A or U".
        prefixes: &'static str,
    },

    /// `secrets.recipients` holds an entry that is not an age recipient.
    #[error("secrets.recipients[{index}] (`{shown}`) is not a valid age recipient: {reason}\n  {RECIPIENT_FORMS}")]
    BadRecipient {
        /// Zero-based position in the list.
        index: usize,
        /// A short prefix of the entry (never a secret key).
        shown: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A seed had to be encrypted but the manifest lists no recipients.
    #[error("cannot store the seed of {public_key}: secrets.recipients is empty\n  add at least one recipient to the manifest; {RECIPIENT_FORMS}")]
    NoRecipients {
        /// The key whose seed could not be stored.
        public_key: String,
    },

    /// No identity source was given, so nothing can be decrypted.
    #[error("no age identity found to decrypt the seed vault\n  looked at, in this order:\n{}\n  = help: run `natsform init` (it writes the identity file above), or pass one with --identity FILE or {ENV_IDENTITY_KEY}=AGE-SECRET-KEY-1… (e.g. from a CI secret)\n  {IDENTITY_FORMS}", looked.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"))]
    NoIdentity {
        /// Each place looked at, with why it gave nothing.
        looked: Vec<String>,
    },

    /// An identity file could not be read.
    #[error("cannot read age identity file {} ({origin}): {source}\n  check the path, or provide the identity another way (--identity FILE, {ENV_IDENTITY_FILE}, {ENV_IDENTITY_KEY})", path.display())]
    IdentityRead {
        /// The file.
        path: PathBuf,
        /// How it was named (`--identity`, `NATSFORM_AGE_IDENTITY`).
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// An identity source holds a line that is not an identity.
    #[error("{origin} line {line} is not an age identity (its content is not shown because it may be secret)\n  {IDENTITY_FORMS}")]
    IdentityParse {
        /// The source, e.g. "identity file /x (--identity)" or "NATSFORM_AGE_KEY".
        origin: String,
        /// One-based line number.
        line: usize,
    },

    /// An identity source parsed but holds no identities.
    #[error("{origin} contains no identities\n  {IDENTITY_FORMS}")]
    IdentityEmpty {
        /// The source.
        origin: String,
    },

    /// An identity in a form that natsform deliberately does not handle.
    #[error("{origin}: {reason}\n  {IDENTITY_FORMS}")]
    IdentityUnsupported {
        /// The source.
        origin: String,
        /// What kind of key it is and what to do instead.
        reason: String,
    },

    /// The vault has no file for a public key that is needed.
    #[error("the seed vault has no seed for {public_key} (expected {})\n  if the file was deleted by mistake, restore it from git; if the seed is lost, rotate the key by changing its label in the manifest", path.display())]
    SeedMissing {
        /// The key.
        public_key: String,
        /// Where its seed should be.
        path: PathBuf,
    },

    /// None of the loaded identities is a recipient of a vault file.
    #[error("cannot decrypt {}: none of the age identities from {origins} is one of its recipients\n  use an identity whose public key was in secrets.recipients when the seed was written, or ask someone who has one to add yours and re-encrypt", path.display())]
    WrongIdentity {
        /// The vault file.
        path: PathBuf,
        /// Where the identities came from.
        origins: String,
    },

    /// A vault file is not a well-formed age file.
    #[error("vault file {} is damaged: {reason}\n  restore it from git (`git checkout -- {}`)", path.display(), path.display())]
    CorruptVaultFile {
        /// The vault file.
        path: PathBuf,
        /// What the age parser said (no plaintext is involved).
        reason: String,
    },

    /// A vault file decrypted, but the plaintext is not an nkey seed.
    #[error("vault file {} decrypted, but it does not hold a valid nkey seed\n  restore it from git (`git checkout -- {}`)", path.display(), path.display())]
    BadSeed {
        /// The vault file.
        path: PathBuf,
    },

    /// A vault file holds the seed of a key other than the one in its name.
    #[error("vault file {} holds a seed for a different key ({found}, expected {expected})\n  vault files must not be renamed or swapped; restore it from git (`git checkout -- {}`)", path.display(), path.display())]
    SeedMismatch {
        /// The vault file.
        path: PathBuf,
        /// The public key named by the file.
        expected: String,
        /// The public key of the seed inside.
        found: String,
    },

    /// An account's bundle of user seeds decrypted, but a line is wrong
    /// (no seed is ever part of `reason`).
    #[error("seed bundle {} line {line}: {reason}\n  restore it from git (`git checkout -- {}`)", path.display(), path.display())]
    BadBundle {
        /// The bundle file.
        path: PathBuf,
        /// One-based line (0: the whole file).
        line: usize,
        /// What is wrong, naming public keys only.
        reason: String,
    },

    /// Encrypting a seed failed.
    #[error("cannot encrypt the seed of {public_key}: {reason}\n  check secrets.recipients in the manifest")]
    Encrypt {
        /// The key.
        public_key: String,
        /// What age said.
        reason: String,
    },

    /// Reading or writing a vault file or directory failed.
    #[error("cannot {action} {}: {source}", path.display())]
    VaultIo {
        /// "read", "write", "list".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Reading or writing the lock file failed.
    #[error("cannot {action} lock file {}: {source}", path.display())]
    LockIo {
        /// "read" or "write".
        action: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The lock file is not valid TOML of the expected shape.
    #[error("{}:{line}: {message}\n  natsform.lock is generated; restore it from git (`git checkout -- {}`) or fix the line", path.display(), path.display())]
    LockParse {
        /// The lock file.
        path: PathBuf,
        /// One-based line of the problem.
        line: usize,
        /// What the parser said.
        message: String,
    },

    /// The lock file has a version this build does not understand.
    #[error("{}: lock file version {found} is not supported (this natsform writes version {supported})\n  upgrade natsform, or restore the lock file from git", path.display())]
    LockVersion {
        /// The lock file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The version this build reads and writes.
        supported: i64,
    },

    /// A lock entry's value is not a well-formed public key.
    #[error("{}: key `{address}` maps to `{shown}`, which is not an nkey public key (56 characters starting with O, A or U)\n  restore the lock file from git (`git checkout -- {}`)", path.display(), path.display())]
    LockBadKey {
        /// The lock file.
        path: PathBuf,
        /// The address whose value is wrong.
        address: String,
        /// A short prefix of the value.
        shown: String,
    },

    /// A lock address is bound to a key of the wrong kind (a user address
    /// to an account key, …).
    #[error("{}: `{address}` is bound to {shown}, {} key, but {} address needs {} key ({}…)\n  restore the lock file from git (`git checkout -- {}`), or delete the line of `{address}`: the next apply generates a key for it and re-issues what it signs", path.display(), article(*found), article(*expected), article(*expected), expected.prefix(), path.display())]
    LockKindMismatch {
        /// The lock file.
        path: PathBuf,
        /// The address whose key has the wrong kind.
        address: String,
        /// A short prefix of the key.
        shown: String,
        /// The kind of the key found.
        found: KeyKind,
        /// The kind the address needs.
        expected: KeyKind,
    },

    /// Two lock addresses name the same public key.
    #[error("{}: `{first}` and `{second}` are both bound to key {shown}; each object needs a key of its own (two JWTs would share one identity)\n  restore the lock file from git (`git checkout -- {}`), or delete the line of the address that should get a new key: the next apply generates one and re-issues what it signs", path.display(), path.display())]
    LockDuplicateKey {
        /// The lock file.
        path: PathBuf,
        /// The address listed first (sorted order).
        first: String,
        /// The other address.
        second: String,
        /// A short prefix of the key.
        shown: String,
    },
}

/// "an operator", "an account", "a user".
fn article(kind: KeyKind) -> String {
    match kind {
        KeyKind::User => format!("a {kind}"),
        _ => format!("an {kind}"),
    }
}

/// Result alias for `crate::keys`.
pub type Result<T, E = KeysError> = std::result::Result<T, E>;

/// What may be shown of a string that should have been a public key: a
/// short prefix, except for anything that looks like an nkey seed (`S…`),
/// which is never echoed because a seed pasted into the wrong place is
/// still a secret.
pub(crate) fn shown_key(s: &str) -> String {
    if s.starts_with('S') {
        "S… (looks like a seed; not shown)".to_string()
    } else {
        short(s, 12)
    }
}

/// At most `n` characters of `s`, with `…` if cut; keeps errors short and
/// limits how much of a mistakenly pasted secret could ever be echoed.
pub(crate) fn short(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}
