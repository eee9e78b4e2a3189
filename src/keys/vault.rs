//! The seed vault: one ASCII-armored age file per nkey seed, named
//! `<PUBLIC_KEY>.age`, committed to git.
//!
//! Invariants:
//! - a stored seed is never overwritten by another seed: only re-sealed to
//!   other recipients ([`Vault::replace`], same seed, checked on opening),
//!   and removed only when no lock entry the manifest keeps names its key
//!   (apply's last disk step, after every JWT it signed is re-issued);
//! - the plaintext seed never touches disk and never appears in an error or
//!   `Debug` output; in memory it lives in zeroizing buffers;
//! - a file's seed always belongs to the key in its name (checked on read).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::DecryptError;
use nkeys::KeyPair;
use zeroize::Zeroizing;

use crate::fsutil::write_atomic;
use crate::keys::error::{shown_key, KeysError, Result};
use crate::keys::identity::Identities;
use crate::keys::kind::kind_of_public_key;
use crate::keys::recipients::Recipients;

/// File name suffix of vault entries.
pub const VAULT_SUFFIX: &str = ".age";

/// Vault files are secrets even though encrypted: keep them private.
pub(crate) const VAULT_FILE_MODE: u32 = 0o600;

/// A seed vault rooted at a directory (which need not exist yet).
#[derive(Debug, Clone)]
pub struct Vault {
    dir: PathBuf,
}

impl Vault {
    /// A vault in `dir`; nothing is read or created until used.
    pub fn new(dir: impl Into<PathBuf>) -> Vault {
        Vault { dir: dir.into() }
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the file that holds (or would hold) the seed of `public_key`.
    ///
    /// Errors if `public_key` is not an operator, account or user public key,
    /// which also keeps arbitrary strings from naming paths outside the vault.
    pub fn seed_path(&self, public_key: &str) -> Result<PathBuf> {
        if kind_of_public_key(public_key).is_none() {
            return Err(KeysError::InvalidPublicKey {
                context: format!("seed vault {}", self.dir.display()),
                shown: shown_key(public_key),
                expected: "operator, account or user",
                prefixes: "O, A or U",
            });
        }
        Ok(self.dir.join(format!("{public_key}{VAULT_SUFFIX}")))
    }

    /// Whether a seed file exists for `public_key` (false for malformed keys).
    pub fn contains(&self, public_key: &str) -> bool {
        self.seed_path(public_key).is_ok_and(|p| p.is_file())
    }

    /// Stores the seed of `kp`, encrypted to `recipients`, unless a file for
    /// its public key already exists. Returns whether it wrote.
    ///
    /// An existing file is never rewritten, even if `recipients` changed:
    /// re-encrypting is a separate, explicit operation. Errors if `kp` has no
    /// seed, is not an operator/account/user key, or `recipients` is empty.
    pub fn put(&self, kp: &KeyPair, recipients: &Recipients) -> Result<bool> {
        match self.seal_new(kp, recipients)? {
            Some((path, armored)) => write_vault_file(path, &armored),
            None => Ok(false),
        }
    }

    /// The seed of `kp` sealed to `recipients`, with the path it goes to,
    /// unless a file for its key exists already (`None`: the vault never
    /// overwrites a seed). A link there is refused. For apply to stage many
    /// in one batch, sealed in parallel.
    pub(crate) fn seal_new(
        &self,
        kp: &KeyPair,
        recipients: &Recipients,
    ) -> Result<Option<(PathBuf, Vec<u8>)>> {
        let public_key = kp.public_key();
        let path = self.seed_path(&public_key)?;
        // Checked before encrypting so that a re-run does no work at all.
        // (Another process could create the file between this check and the
        // rename; natsform is not meant to run concurrently on one checkout,
        // and both writers would hold a seed for the same public key only if
        // they held the same seed.) A link is refused rather than taken for a
        // stored seed (or followed).
        refuse_link(&path, "write")?;
        if path.exists() {
            return Ok(None);
        }
        if recipients.is_empty() {
            return Err(KeysError::NoRecipients { public_key });
        }
        let armored = encrypt_seed(kp, recipients, &public_key)?;
        Ok(Some((path, armored)))
    }

    /// [`Vault::replace`] staged in `batch` (written when it commits).
    pub(crate) fn stage_replace(
        &self,
        public_key: &str,
        armored: &[u8],
        batch: &mut crate::fsutil::Batch,
    ) -> Result<bool> {
        stage_vault_file(self.seed_path(public_key)?, armored, batch)
    }

    /// Decrypts the seed of `public_key` with `identities` and returns its
    /// key pair, checked to have exactly that public key.
    pub fn get(&self, public_key: &str, identities: &Identities) -> Result<KeyPair> {
        let path = self.seed_path(public_key)?;
        refuse_link(&path, "read")?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeysError::SeedMissing {
                    public_key: public_key.to_string(),
                    path,
                })
            }
            Err(source) => {
                return Err(KeysError::VaultIo {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let seed = decrypt(&bytes, identities, &path)?;
        let text =
            std::str::from_utf8(&seed).map_err(|_| KeysError::BadSeed { path: path.clone() })?;
        // Trimmed because seeds written by other tools may end in a newline.
        let kp = KeyPair::from_seed(text.trim())
            .map_err(|_| KeysError::BadSeed { path: path.clone() })?;
        let found = kp.public_key();
        if found != public_key {
            return Err(KeysError::SeedMismatch {
                path,
                expected: public_key.to_string(),
                found,
            });
        }
        Ok(kp)
    }

    /// What is wrong with the seed file of `public_key`, if anything, found
    /// without decrypting it: missing, not a regular file, or not a
    /// well-formed armoured age file. Needs no identity, so `plan` can tell
    /// a reviewer about a deleted or damaged seed before apply needs it.
    /// The vault's directory is a path of `src`: the working directory, or
    /// a git tree at a revision for `plan --base`.
    pub fn inspect_in(&self, src: &dyn crate::source::Source, public_key: &str) -> Option<String> {
        self.examine_in(src, public_key).problem
    }

    /// [`Vault::inspect_in`] and who the file is sealed to
    /// ([`sealed_to`]), from one read of the file: `plan` needs both for
    /// every seed, and on 100,000 users a second read is what it would pay.
    pub fn examine_in(&self, src: &dyn crate::source::Source, public_key: &str) -> Examined {
        match self.seed_path(public_key) {
            Ok(path) => self.examine_file_in(
                src,
                &path,
                &format!("its seed file {public_key}{VAULT_SUFFIX}"),
                crate::source::MAX_SEED_FILE_BYTES,
            ),
            Err(e) => Examined {
                problem: Some(e.to_string()),
                ..Examined::default()
            },
        }
    }

    /// [`Vault::examine_in`] of the file at `path`, named `what` in
    /// problems ("its seed file X.age"), read under `limit` bytes.
    pub(crate) fn examine_file_in(
        &self,
        src: &dyn crate::source::Source,
        path: &Path,
        what: &str,
        limit: u64,
    ) -> Examined {
        use crate::source::Kind;
        let problem = |problem: String| Examined {
            problem: Some(problem),
            ..Examined::default()
        };
        match src.kind(path) {
            Ok(None) => return problem(format!("{what} is missing from the vault")),
            Err(e) => return problem(format!("{what} cannot be read: {e}")),
            Ok(Some(Kind::Symlink)) => {
                return problem(format!("{what} is a symbolic link, and natsform does not follow links inside the project; replace the link by the file itself"))
            }
            Ok(Some(Kind::Submodule)) => {
                return problem(format!("{what} is a git submodule, and natsform does not follow links inside the project; replace it by the file itself"))
            }
            Ok(Some(Kind::File)) => {}
            Ok(Some(_)) => return problem(format!("{what} is not a regular file")),
        }
        let bytes = match src.read(path, limit) {
            Ok(Some(b)) => b,
            Ok(None) => return problem(format!("{what} is missing from the vault")),
            Err(e) => return problem(format!("{what} cannot be read: {e}")),
        };
        Examined {
            problem: match age::Decryptor::new_buffered(ArmoredReader::new(&bytes[..])) {
                Ok(d) if !d.is_scrypt() => None,
                Ok(_) => Some(format!(
                    "{what} is passphrase-encrypted, which natsform never writes"
                )),
                Err(e) => Some(format!("{what} is damaged ({e})")),
            },
            sealed: sealed_to(&bytes),
            users: None,
        }
    }

    /// Public keys that have a seed file, sorted. A missing directory is an
    /// empty vault; files that are not `<PUBLIC_KEY>.age` are ignored.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeysError::VaultIo {
                    action: "list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| KeysError::VaultIo {
                action: "list",
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(VAULT_SUFFIX)) else {
                continue;
            };
            if kind_of_public_key(key).is_some() && entry.path().is_file() {
                keys.push(key.to_string());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// [`encrypt_seed`] for the sealing probe of `tests_bundle`.
#[cfg(test)]
pub(crate) fn encrypt_seed_for_probe(kp: &KeyPair, recipients: &Recipients) -> Vec<u8> {
    encrypt_seed(kp, recipients, &kp.public_key()).unwrap()
}

fn encrypt_seed(kp: &KeyPair, recipients: &Recipients, public_key: &str) -> Result<Vec<u8>> {
    let encrypt_err = |reason: String| KeysError::Encrypt {
        public_key: public_key.to_string(),
        reason,
    };
    let seed = Zeroizing::new(kp.seed().map_err(|_| {
        encrypt_err("the key pair has no seed (it was built from a public key)".to_string())
    })?);
    if kind_of_public_key(public_key).is_none() {
        return Err(encrypt_err(
            "not an operator, account or user key".to_string(),
        ));
    }
    let encryptor = age::Encryptor::with_recipients(recipients.as_age())
        .map_err(|e| encrypt_err(e.to_string()))?;
    // Only ciphertext reaches this buffer; the armor makes diffs readable.
    let io_err = |e: std::io::Error| encrypt_err(e.to_string());
    let armor = ArmoredWriter::wrap_output(Vec::new(), Format::AsciiArmor).map_err(io_err)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io_err)?;
    writer.write_all(seed.as_bytes()).map_err(io_err)?;
    let armor = writer.finish().map_err(io_err)?;
    armor.finish().map_err(io_err)
}

/// The plaintext of the armoured age file `bytes` (read from `path`).
pub(crate) fn decrypt(
    bytes: &[u8],
    identities: &Identities,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>> {
    let corrupt = |reason: String| KeysError::CorruptVaultFile {
        path: path.to_path_buf(),
        reason,
    };
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(bytes))
        .map_err(|e| corrupt(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(identities.as_age())
        .map_err(|e| match e {
            DecryptError::NoMatchingKeys => KeysError::WrongIdentity {
                path: path.to_path_buf(),
                origins: identities.origins().join(", "),
            },
            other => corrupt(other.to_string()),
        })?;
    // The plaintext is shorter than the file: reading never reallocates
    // and leaves an unzeroized copy behind.
    let mut plain = Zeroizing::new(Vec::with_capacity(bytes.len().max(256)));
    reader
        .read_to_end(&mut plain)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(plain)
}

/// Who a seed file is sealed to, as far as its age header tells without
/// decrypting: how many X25519 stanzas (which never name their recipient)
/// and the tags of its SSH stanzas (the first four bytes of the SHA-256 of
/// the SSH public key, so they do name it). Other stanza types (age adds a
/// random "grease" stanza to every file) are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed {
    pub x25519: usize,
    /// `ssh-ed25519 TAG` / `ssh-rsa TAG`, sorted.
    pub ssh: Vec<String>,
}

impl Sealed {
    /// Whether a file sealed as `self` may still open for a recipient that
    /// `declared` no longer lists: more X25519 stanzas, or an SSH key it
    /// does not name.
    pub fn exceeds(&self, declared: &Sealed) -> bool {
        self.x25519 > declared.x25519 || self.ssh.iter().any(|t| !declared.ssh.contains(t))
    }
}

/// What one read of a seed file tells without an identity.
#[derive(Debug, Clone, Default)]
pub struct Examined {
    /// What is wrong with it (see [`Vault::inspect_in`]).
    pub problem: Option<String>,
    /// Who its age header says it is sealed to (`None` when it is not an
    /// age file).
    pub sealed: Option<Sealed>,
    /// For a bundle of user seeds: the user keys its index lists, sorted.
    pub users: Option<Vec<String>>,
}

/// Largest age header read to find its stanzas (natsform writes a few
/// hundred bytes per recipient).
const MAX_HEADER_BYTES: usize = 256 * 1024;

/// The stanzas of the armoured age file `bytes`, or `None` when it is not
/// one (damaged files are reported by [`Vault::inspect_in`]).
pub fn sealed_to(bytes: &[u8]) -> Option<Sealed> {
    // Decoded a chunk at a time up to the header's end (its `---` line),
    // not the whole file: a bundle of 10,000 users is 1.6 MB of armour.
    let mut reader = ArmoredReader::new(bytes).take(MAX_HEADER_BYTES as u64);
    let mut plain = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        let from = plain.len().saturating_sub(4);
        plain.extend_from_slice(&chunk[..n]);
        // The header is whole once a line starting with `---` has ended.
        if let Some(at) = find(&plain[from..], b"\n---") {
            if plain[from + at + 1..].contains(&b'\n') {
                break;
            }
        }
    }
    let mut sealed = Sealed::default();
    let mut lines = plain.split(|b| *b == b'\n');
    if lines.next()? != b"age-encryption.org/v1" {
        return None;
    }
    for line in lines {
        if line.starts_with(b"---") {
            sealed.ssh.sort();
            return Some(sealed);
        }
        let Some(stanza) = line.strip_prefix(b"-> ") else {
            continue; // a stanza's body
        };
        let mut args = stanza.split(|b| *b == b' ');
        match args.next() {
            Some(b"X25519") => sealed.x25519 += 1,
            Some(kind @ (b"ssh-ed25519" | b"ssh-rsa")) => {
                let tag = args.next()?;
                sealed.ssh.push(format!(
                    "{} {}",
                    std::str::from_utf8(kind).ok()?,
                    std::str::from_utf8(tag).ok()?
                ));
            }
            _ => {}
        }
    }
    None
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Vault {
    /// Public keys with a `<KEY>.age` regular file in the vault of `src`,
    /// sorted; a missing directory is an empty vault.
    pub fn list_in(&self, src: &dyn crate::source::Source) -> Vec<String> {
        let Ok(entries) = src.list(&self.dir) else {
            return Vec::new();
        };
        let mut keys: Vec<String> = entries
            .into_iter()
            .filter(|(_, kind)| *kind == crate::source::Kind::File)
            .filter_map(|(name, _)| {
                let key = name.to_str()?.strip_suffix(VAULT_SUFFIX)?;
                kind_of_public_key(key).map(|_| key.to_string())
            })
            .collect();
        keys.sort();
        keys
    }

    /// The seed file of `public_key` re-encrypted to `recipients` (`sops
    /// updatekeys`), in memory: opened with `identities` and checked to
    /// belong to its key; the seed itself never changes. Write it with
    /// [`Vault::replace`].
    pub fn sealed_again(
        &self,
        public_key: &str,
        identities: &Identities,
        recipients: &Recipients,
    ) -> Result<Vec<u8>> {
        if recipients.is_empty() {
            return Err(KeysError::NoRecipients {
                public_key: public_key.to_string(),
            });
        }
        let kp = self.get(public_key, identities)?;
        encrypt_seed(&kp, recipients, public_key)
    }

    /// Writes `armored` (from [`Vault::sealed_again`]) over the seed file of
    /// `public_key`, atomically; a link is refused. The one place a stored
    /// seed file is rewritten, always with the same seed.
    pub fn replace(&self, public_key: &str, armored: &[u8]) -> Result<bool> {
        write_vault_file(self.seed_path(public_key)?, armored)
    }

    /// Removes the seed file of `public_key` (a link is removed, never
    /// followed). Returns whether there was one.
    pub fn remove(&self, public_key: &str) -> Result<bool> {
        let path = self.seed_path(public_key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(KeysError::VaultIo {
                action: "remove",
                path,
                source,
            }),
        }
    }
}

/// Stages `bytes` for the vault file at `path` (mode 0600) in `batch`; the
/// one way apply writes into the vault.
pub(crate) fn stage_vault_file(
    path: PathBuf,
    bytes: &[u8],
    batch: &mut crate::fsutil::Batch,
) -> Result<bool> {
    batch
        .write(&path, bytes, VAULT_FILE_MODE)
        .map_err(|source| KeysError::VaultIo {
            action: "write",
            path,
            source,
        })
}

/// Refuses a link at `path` (never followed, never taken for a vault file).
pub(crate) fn refuse_link(path: &Path, action: &'static str) -> Result<()> {
    if crate::safepath::is_link(path) {
        return Err(KeysError::VaultIo {
            action,
            path: path.to_path_buf(),
            source: std::io::Error::other(crate::safepath::LINK_REFUSED),
        });
    }
    Ok(())
}

/// Writes `bytes` to the vault file at `path` (mode 0600) atomically;
/// unchanged bytes are not rewritten and a link is refused.
pub(crate) fn write_vault_file(path: PathBuf, bytes: &[u8]) -> Result<bool> {
    refuse_link(&path, "write")?;
    write_atomic(&path, bytes, VAULT_FILE_MODE).map_err(|source| KeysError::VaultIo {
        action: "write",
        path,
        source,
    })
}
