//! User seeds sealed per account: `vault/<ACCOUNT_PUBLIC_KEY>.users.age`,
//! one armoured age file holding the seeds of that account's users.
//!
//! The plaintext is documented (README) so that anyone holding an identity
//! can recover a seed with `age -d` alone:
//!
//! ```text
//! # natsform user seeds of account <ACCOUNT_PUBLIC_KEY>; one "<USER_PUBLIC_KEY> <SEED>" per line
//! UABC… SUAB…
//! ```
//!
//! sorted by public key. Invariants:
//! - on every open, the first line names the account of the file's name (a
//!   bundle renamed or swapped is refused), every line is `<USER_PUBLIC_KEY>
//!   <USER_SEED>` with both checksums right, and no key is listed twice;
//! - a seed is checked to belong to the public key its line names (one
//!   Ed25519 public-key derivation) before it is used: whenever a key pair
//!   leaves [`UserSeeds`] ([`UserSeeds::get`], [`UserSeeds::take`]), and
//!   for every line ([`UserSeeds::check_all`]) before apply seals the
//!   bundle again: a line holding another key's seed would otherwise be
//!   carried forward silently. A line carried over ([`SeedLine`]) keeps
//!   its seed as read (see `check_on_use` in the tests);
//! - plaintext lives only in zeroizing buffers and never reaches an error;
//! - a user's seed in a legacy per-user file (`<USER_PUBLIC_KEY>.age`, as
//!   natsform wrote before bundles) is read as before.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::armor::{ArmoredWriter, Format};
use nkeys::KeyPair;
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::keys::error::{shown_key, KeysError, Result};
use crate::keys::identity::Identities;
use crate::keys::kind::{kind_of_public_key, KeyKind};
use crate::keys::recipients::Recipients;
use crate::keys::vault::{
    decrypt, refuse_link, stage_vault_file, write_vault_file, Examined, Vault,
};

/// File name suffix of an account's bundle of user seeds.
pub const BUNDLE_SUFFIX: &str = ".users.age";

/// File name suffix of a bundle's index: the public keys whose seeds it
/// holds, in clear (public keys are not secret), so that `plan` can tell,
/// with no identity, which users a bundle holds, and a reviewer sees in
/// the git diff which keys joined or left it.
pub const INDEX_SUFFIX: &str = ".users.keys";

const INDEX_HEADER: &str = "# natsform: public keys of the users whose seeds ";

/// Largest bundle read (about 400,000 users in one account).
pub const MAX_BUNDLE_FILE_BYTES: u64 = 64 * 1024 * 1024;

const HEADER_START: &str = "# natsform user seeds of account ";
const HEADER_END: &str = "; one \"<USER_PUBLIC_KEY> <SEED>\" per line";

/// The user seeds of one account, by public key. Its `Debug` shows the
/// public keys only.
#[derive(Default)]
pub struct UserSeeds {
    seeds: BTreeMap<String, Entry>,
}

/// One user's seed in a [`UserSeeds`].
enum Entry {
    /// A key pair made in this run (or read from a file of its own and
    /// checked there).
    Pair(Box<KeyPair>),
    /// A line of a bundle: a well-formed user seed (checksum right), not
    /// yet checked to belong to the key its line names.
    Line {
        /// The plaintext it was read from, shared by its lines.
        plain: Arc<Plaintext>,
        /// Where the seed starts in it ([`SEED_LEN`] bytes).
        start: usize,
        /// Its one-based line, for errors.
        line: usize,
    },
}

/// The decrypted bundle the lines of a [`UserSeeds`] point into, zeroed
/// when the last of them goes.
struct Plaintext {
    bytes: Zeroizing<Vec<u8>>,
    /// The bundle it was read from, for errors.
    path: PathBuf,
}

/// Length of an encoded nkey seed (`SU…`).
const SEED_LEN: usize = 58;

impl Entry {
    /// The seed's text.
    fn seed(&self, public: &str) -> Result<Zeroizing<String>> {
        match self {
            Entry::Pair(kp) => Ok(Zeroizing::new(kp.seed().map_err(|_| {
                KeysError::Encrypt {
                    public_key: public.to_string(),
                    reason: "the key pair has no seed (it was built from a public key)".to_string(),
                }
            })?)),
            Entry::Line { plain, start, .. } => Ok(Zeroizing::new(
                // Checked to be ASCII (a valid seed) when read.
                String::from_utf8_lossy(&plain.bytes[*start..*start + SEED_LEN]).into_owned(),
            )),
        }
    }
}

/// A user's seed moved from one [`UserSeeds`] to another as it is, bound to
/// its public key (it can only be put back under that key). Its `Debug`
/// shows the public key only.
pub struct SeedLine {
    public: String,
    entry: Entry,
}

impl std::fmt::Debug for SeedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SeedLine").field(&self.public).finish()
    }
}

impl SeedLine {
    /// The public key whose seed it holds.
    pub fn public_key(&self) -> &str {
        &self.public
    }
}

impl Entry {
    /// The key pair of user `public`, its seed checked to belong to it.
    fn pair(self, public: &str) -> Result<KeyPair> {
        match self {
            Entry::Pair(kp) => Ok(*kp),
            line => line.pair_copy(public),
        }
    }

    /// [`Entry::pair`] without taking the entry: a copy of the key pair.
    fn pair_copy(&self, public: &str) -> Result<KeyPair> {
        match self {
            Entry::Pair(_) => {
                let seed = self.seed(public)?;
                KeyPair::from_seed(&seed).map_err(|e| KeysError::Encrypt {
                    public_key: public.to_string(),
                    reason: e.to_string(),
                })
            }
            Entry::Line { plain, line, .. } => {
                checked_pair(public, &self.seed(public)?, &plain.path, *line)
            }
        }
    }
}

/// The key pair of `seed`, read on `line` of the bundle at `path` where it
/// is listed as the seed of `public`: refused unless it is that key's.
fn checked_pair(public: &str, seed: &str, path: &Path, line: usize) -> Result<KeyPair> {
    let bad = |reason: String| KeysError::BadBundle {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let kp = KeyPair::from_seed(seed)
        .map_err(|_| bad(format!("the seed of {public} is not a valid nkey seed")))?;
    let found = kp.public_key();
    if found != public {
        return Err(bad(format!(
            "the line names {public} but holds the seed of {found}; a bundle line must never hold another key's seed"
        )));
    }
    Ok(kp)
}

impl std::fmt::Debug for UserSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.seeds.keys()).finish()
    }
}

impl UserSeeds {
    pub fn new() -> UserSeeds {
        UserSeeds::default()
    }

    /// Adds `kp` (a user key pair with its seed) under its public key.
    pub fn insert(&mut self, kp: KeyPair) {
        self.seeds
            .insert(kp.public_key(), Entry::Pair(Box::new(kp)));
    }

    /// The key pair of `public_key` (a copy), its seed checked to belong
    /// to it; `None` when it holds no seed for that key.
    pub fn get(&self, public_key: &str) -> Option<Result<KeyPair>> {
        self.seeds.get(public_key).map(|e| e.pair_copy(public_key))
    }

    /// Takes the key pair of `public_key` out, its seed checked to belong
    /// to it; `None` when it holds no seed for that key.
    pub fn take(&mut self, public_key: &str) -> Option<Result<KeyPair>> {
        self.seeds.remove(public_key).map(|e| e.pair(public_key))
    }

    /// Takes the seed of `public_key` out as it is, to carry it over into
    /// another bundle with [`UserSeeds::insert_line`] (no check: it stays
    /// the seed of the same key, with the bytes it was read with).
    pub fn take_line(&mut self, public_key: &str) -> Option<SeedLine> {
        let (public, entry) = self.seeds.remove_entry(public_key)?;
        Some(SeedLine { public, entry })
    }

    /// Puts `line` back, under the public key it was taken from.
    pub fn insert_line(&mut self, line: SeedLine) {
        self.seeds.insert(line.public, line.entry);
    }

    /// Checks every seed read from a bundle against the key its line names
    /// (in parallel; the first bad line in key order is reported).
    pub fn check_all(&self) -> Result<()> {
        self.seeds
            .par_iter()
            .try_for_each(|(public, entry)| match entry {
                Entry::Pair(_) => Ok(()),
                Entry::Line { .. } => entry.pair_copy(public).map(|_| ()),
            })
    }

    pub fn contains(&self, public_key: &str) -> bool {
        self.seeds.contains_key(public_key)
    }

    /// The public keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.seeds.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }
}

/// The bundle's plaintext: the header line, then one line per user, sorted.
fn plaintext(account: &str, seeds: &UserSeeds) -> Result<Zeroizing<Vec<u8>>> {
    // Sized up front so that no reallocation leaves a copy behind.
    let size = HEADER_START.len() + account.len() + HEADER_END.len() + 1 + seeds.len() * 128;
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    out.extend_from_slice(HEADER_START.as_bytes());
    out.extend_from_slice(account.as_bytes());
    out.extend_from_slice(HEADER_END.as_bytes());
    out.push(b'\n');
    for (public, entry) in &seeds.seeds {
        out.extend_from_slice(public.as_bytes());
        out.push(b' ');
        match entry {
            Entry::Pair(_) => out.extend_from_slice(entry.seed(public)?.as_bytes()),
            // The seed's bytes as read.
            Entry::Line { plain, start, .. } => {
                out.extend_from_slice(&plain.bytes[*start..*start + SEED_LEN])
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// Reads the plaintext of the bundle at `path` (named for `account`),
/// checking every line's shape: the header names `account`, every line is
/// a user public key and a well-formed user seed (checksums right), and no
/// key appears twice. Whether a seed belongs to its line's key is checked
/// when it is used ([`UserSeeds::get`], [`UserSeeds::take`]).
fn parse(account: &str, plain: Zeroizing<Vec<u8>>, path: &std::path::Path) -> Result<UserSeeds> {
    let bad = |line: usize, reason: String| KeysError::BadBundle {
        path: path.to_path_buf(),
        line,
        reason,
    };
    // The lines point into it; it is zeroed when the last of them goes.
    let plain = Arc::new(Plaintext {
        bytes: plain,
        path: path.to_path_buf(),
    });
    let text =
        std::str::from_utf8(&plain.bytes).map_err(|_| bad(0, "it is not UTF-8 text".into()))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, first)) => {
            let named = first
                .strip_prefix(HEADER_START)
                .and_then(|r| r.strip_suffix(HEADER_END));
            match named {
                Some(a) if a == account => {}
                // Never echoed: a damaged header may hold part of a seed,
                // which no redaction can recognise.
                Some(_) => {
                    return Err(bad(
                        1,
                        "it holds the user seeds of another account than the one its name says; bundles must not be renamed or swapped".to_string(),
                    ))
                }
                None => return Err(bad(1, "the header line is missing".into())),
            }
        }
        None => return Err(bad(0, "it is empty".into())),
    }
    let mut numbered: Vec<(usize, &str)> =
        Vec::with_capacity(text.bytes().filter(|b| *b == b'\n').count() + 1);
    numbered.extend(lines.filter(|(_, l)| !l.is_empty() && !l.starts_with('#')));
    // Two checksums a line, no key derivation: cheap enough for 100,000
    // lines; in parallel all the same, the first bad line (in file order)
    // reported, as a serial read would.
    let base = text.as_ptr() as usize;
    let checked: Vec<Result<(String, Entry)>> = numbered
        .par_iter()
        .map(|&(n, line)| {
            let Some((public, seed)) = line.split_once(' ') else {
                return Err(bad(n, "not `<USER_PUBLIC_KEY> <SEED>`".into()));
            };
            if kind_of_public_key(public) != Some(KeyKind::User) {
                return Err(bad(
                    n,
                    format!("`{}` is not a user public key", shown_key(public)),
                ));
            }
            let seed = seed.trim_end();
            if !is_user_seed(seed) {
                return Err(bad(
                    n,
                    format!("the seed of {public} is not a valid nkey seed of a user"),
                ));
            }
            let entry = Entry::Line {
                plain: Arc::clone(&plain),
                start: seed.as_ptr() as usize - base,
                line: n,
            };
            Ok((public.to_string(), entry))
        })
        .collect();
    let mut entries = Vec::with_capacity(checked.len());
    for c in checked {
        entries.push(c?);
    }
    // Sorted by key, as natsform writes them: then no key is there twice.
    // Otherwise the first line whose key an earlier line has.
    if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
        let mut seen = std::collections::HashSet::new();
        for (&(n, _), (public, _)) in numbered.iter().zip(&entries) {
            if !seen.insert(public.as_str()) {
                return Err(bad(n, format!("{public} is listed twice")));
            }
        }
    }
    Ok(UserSeeds {
        seeds: entries.into_iter().collect(),
    })
}

/// Whether `seed` is a well-formed nkey seed of a user key (length,
/// base32, checksum, prefixes), without deriving its public key.
fn is_user_seed(seed: &str) -> bool {
    match nkeys::decode_seed(seed) {
        Ok((prefix, mut raw)) => {
            zeroize::Zeroize::zeroize(&mut raw);
            prefix == USER_PREFIX_BYTE
        }
        Err(_) => false,
    }
}

/// The prefix byte of user keys in nkeys' encoding (`U…`, seeds `SU…`).
const USER_PREFIX_BYTE: u8 = 20 << 3;

/// The index of the bundle of `account` holding `keys` (sorted).
pub fn index_text<'a>(account: &str, keys: impl Iterator<Item = &'a str>) -> String {
    let mut out = format!("{INDEX_HEADER}{account}{BUNDLE_SUFFIX} holds (not secret)\n");
    for k in keys {
        out.push_str(k);
        out.push('\n');
    }
    out
}

/// The keys an index lists, sorted; why it is wrong otherwise.
pub fn parse_index(account: &str, bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut lines = text.lines().enumerate();
    let header = format!("{INDEX_HEADER}{account}{BUNDLE_SUFFIX} holds (not secret)");
    match lines.next() {
        Some((_, first)) if first == header => {}
        _ => return Err("line 1 is not the header naming its bundle".to_string()),
    }
    // Sized up front: growing a list of 10,000 keys step by step costs
    // more than checking them.
    let mut keys = Vec::with_capacity(bytes.iter().filter(|b| **b == b'\n').count());
    for (i, line) in lines {
        if kind_of_public_key(line) != Some(KeyKind::User) {
            return Err(format!(
                "line {} is not a user public key (`{}`)",
                i + 1,
                crate::safepath::escape_line(&shown_key(line))
            ));
        }
        keys.push(line.to_string());
    }
    // Sorted, as natsform writes it: then no key is there twice.
    if !keys.windows(2).all(|w| w[0] < w[1]) {
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != n {
            return Err("a key is listed twice".to_string());
        }
    }
    Ok(keys)
}

/// Encrypts `seeds` as the bundle of `account` to `recipients` (armoured).
pub fn seal(account: &str, seeds: &UserSeeds, recipients: &Recipients) -> Result<Vec<u8>> {
    let encrypt_err = |reason: String| KeysError::Encrypt {
        public_key: account.to_string(),
        reason,
    };
    if recipients.is_empty() {
        return Err(KeysError::NoRecipients {
            public_key: account.to_string(),
        });
    }
    let plain = plaintext(account, seeds)?;
    let encryptor = age::Encryptor::with_recipients(recipients.as_age())
        .map_err(|e| encrypt_err(e.to_string()))?;
    let io_err = |e: std::io::Error| encrypt_err(e.to_string());
    // Sized up front (base64 of the payload, 64 columns, plus the age
    // header and one tag per 64 KiB chunk): no copy while it grows.
    let payload = plain.len() + plain.len() / 65536 * 16 + 16 + 1024 * (recipients.len() + 1);
    let armored_size = payload / 3 * 4 * 65 / 64 + 256;
    let armor = ArmoredWriter::wrap_output(Vec::with_capacity(armored_size), Format::AsciiArmor)
        .map_err(io_err)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io_err)?;
    writer.write_all(&plain).map_err(io_err)?;
    let armor = writer.finish().map_err(io_err)?;
    armor.finish().map_err(io_err)
}

impl Vault {
    /// Path of the bundle of user seeds of `account` (an account public key).
    pub fn bundle_path(&self, account: &str) -> Result<PathBuf> {
        if kind_of_public_key(account) != Some(KeyKind::Account) {
            return Err(KeysError::InvalidPublicKey {
                context: format!("seed vault {}", self.dir().display()),
                shown: shown_key(account),
                expected: "account",
                prefixes: "A",
            });
        }
        Ok(self.dir().join(format!("{account}{BUNDLE_SUFFIX}")))
    }

    /// Opens the bundle of `account` with `identities`, every line's shape
    /// checked (its seed against its key on use, or by `check_all`);
    /// `None` when there is no bundle. A link is refused.
    pub fn open_bundle(&self, account: &str, identities: &Identities) -> Result<Option<UserSeeds>> {
        Ok(self
            .open_bundle_digest(account, identities)?
            .map(|(seeds, _)| seeds))
    }

    /// [`Vault::open_bundle`], and the SHA-256 of the sealed bytes it read
    /// (what `apply` remembers of the bundles it sealed).
    pub fn open_bundle_digest(
        &self,
        account: &str,
        identities: &Identities,
    ) -> Result<Option<(UserSeeds, crate::verified::Digest)>> {
        let path = self.bundle_path(account)?;
        refuse_link(&path, "read")?;
        let bytes = match read_bounded(&path)? {
            Some(b) => b,
            None => return Ok(None),
        };
        let digest = crate::verified::digest_bytes(&bytes);
        let plain = decrypt(&bytes, identities, &path)?;
        parse(account, plain, &path).map(|seeds| Some((seeds, digest)))
    }

    /// Path of the index of the bundle of `account`.
    pub fn index_path(&self, account: &str) -> Result<PathBuf> {
        let bundle = self.bundle_path(account)?;
        Ok(bundle.with_file_name(format!("{account}{INDEX_SUFFIX}")))
    }

    /// Writes `armored` (from [`seal`], `None`: the bundle stays as it
    /// is) as the bundle of `account`, then its index listing `keys`,
    /// atomically (unchanged bytes are not rewritten); a link is refused.
    /// Returns whether the bundle was written.
    pub fn write_bundle(
        &self,
        account: &str,
        armored: Option<&[u8]>,
        keys: &[String],
    ) -> Result<bool> {
        let written = match armored {
            Some(bytes) => write_vault_file(self.bundle_path(account)?, bytes)?,
            None => false,
        };
        let index = index_text(account, keys.iter().map(String::as_str));
        write_vault_file(self.index_path(account)?, index.as_bytes())?;
        Ok(written)
    }

    /// [`Vault::write_bundle`] staged in `batch` (written, bundle before
    /// index, when it commits). Returns whether the bundle was staged.
    pub(crate) fn stage_bundle(
        &self,
        account: &str,
        armored: Option<&[u8]>,
        keys: &[String],
        batch: &mut crate::fsutil::Batch,
    ) -> Result<bool> {
        let written = match armored {
            Some(bytes) => self.stage_bundle_file(account, bytes, batch)?,
            None => false,
        };
        self.stage_bundle_index(account, keys, batch)?;
        Ok(written)
    }

    /// Stages the sealed bundle of `account` alone (its index is staged by
    /// [`Vault::stage_bundle_index`], in a later batch when the index must
    /// not get ahead of the bundle).
    pub(crate) fn stage_bundle_file(
        &self,
        account: &str,
        armored: &[u8],
        batch: &mut crate::fsutil::Batch,
    ) -> Result<bool> {
        stage_vault_file(self.bundle_path(account)?, armored, batch)
    }

    /// Stages the public index of `account`'s bundle, listing `keys`.
    pub(crate) fn stage_bundle_index(
        &self,
        account: &str,
        keys: &[String],
        batch: &mut crate::fsutil::Batch,
    ) -> Result<bool> {
        let index = index_text(account, keys.iter().map(String::as_str));
        stage_vault_file(self.index_path(account)?, index.as_bytes(), batch)
    }

    /// Removes the bundle of `account` and its index (a link is removed,
    /// never followed). Returns whether there was a bundle.
    pub fn remove_bundle(&self, account: &str) -> Result<bool> {
        let remove = |path: PathBuf| match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(KeysError::VaultIo {
                action: "remove",
                path,
                source,
            }),
        };
        // The index first: a bundle left without its index (a crash in
        // between) is still listed, as an orphan, and removed next time; an
        // index left without its bundle would be listed by nothing.
        remove(self.index_path(account)?)?;
        remove(self.bundle_path(account)?)
    }

    /// Whether the bundle of `account` is a regular file.
    pub fn has_bundle(&self, account: &str) -> bool {
        self.bundle_path(account)
            .is_ok_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()))
    }

    /// The key pair of user `public_key`: from its own seed file when one
    /// exists (written before bundles), else from the bundle of the first of
    /// `accounts` that has one. Checked to be that key.
    pub fn get_user(
        &self,
        public_key: &str,
        accounts: &[&str],
        identities: &Identities,
    ) -> Result<KeyPair> {
        let legacy = self.seed_path(public_key)?;
        // A link there is never followed: the bundle is read instead.
        if std::fs::symlink_metadata(&legacy).is_ok_and(|m| m.file_type().is_file()) {
            return self.get(public_key, identities);
        }
        for account in accounts {
            if let Some(mut seeds) = self.open_bundle(account, identities)? {
                return seeds.take(public_key).unwrap_or_else(|| {
                    Err(KeysError::SeedMissing {
                        public_key: public_key.to_string(),
                        path: self.bundle_path(account).unwrap_or_default(),
                    })
                });
            }
        }
        let path = match accounts.first() {
            Some(a) => self.bundle_path(a)?,
            None => legacy,
        };
        Err(KeysError::SeedMissing {
            public_key: public_key.to_string(),
            path,
        })
    }

    /// [`Vault::examine_in`] for the bundle of `account`: presence, shape
    /// and who its age header says it is sealed to, with no identity.
    /// Its index is read too: the keys it lists are [`Examined::users`].
    pub fn examine_bundle_in(&self, src: &dyn crate::source::Source, account: &str) -> Examined {
        let (path, index) = match (self.bundle_path(account), self.index_path(account)) {
            (Ok(p), Ok(i)) => (p, i),
            (Err(e), _) | (_, Err(e)) => {
                return Examined {
                    problem: Some(e.to_string()),
                    ..Examined::default()
                }
            }
        };
        let mut examined = self.examine_file_in(
            src,
            &path,
            &format!("its account's seed bundle {account}{BUNDLE_SUFFIX}"),
            MAX_BUNDLE_FILE_BYTES,
        );
        if examined.problem.is_some() {
            return examined;
        }
        let name = format!("{account}{INDEX_SUFFIX}");
        let read = match src.kind(&index) {
            Ok(Some(crate::source::Kind::File)) => src
                .read(&index, MAX_BUNDLE_FILE_BYTES)
                .map_err(|e| format!("cannot be read: {e}")),
            Ok(None) => Ok(None),
            Ok(Some(_)) => Err(
                "is not a regular file (natsform does not follow links inside the project)"
                    .to_string(),
            ),
            Err(e) => Err(format!("cannot be read: {e}")),
        };
        match read {
            Ok(Some(bytes)) => match parse_index(account, &bytes) {
                Ok(keys) => examined.users = Some(keys),
                Err(why) => {
                    examined.problem = Some(format!(
                        "the index {name} of its account's seed bundle is damaged: {why}"
                    ))
                }
            },
            Ok(None) => {
                examined.problem = Some(format!(
                    "the index {name} of its account's seed bundle is missing from the vault"
                ))
            }
            Err(why) => {
                examined.problem = Some(format!(
                    "the index {name} of its account's seed bundle {why}"
                ))
            }
        }
        examined
    }

    /// Account public keys with a `<KEY>.users.age` regular file in the
    /// vault of `src`, sorted.
    pub fn list_bundles_in(&self, src: &dyn crate::source::Source) -> Vec<String> {
        let Ok(entries) = src.list(self.dir()) else {
            return Vec::new();
        };
        let mut keys: Vec<String> = entries
            .into_iter()
            .filter(|(_, kind)| *kind == crate::source::Kind::File)
            .filter_map(|(name, _)| {
                let key = name.to_str()?.strip_suffix(BUNDLE_SUFFIX)?;
                (kind_of_public_key(key) == Some(KeyKind::Account)).then(|| key.to_string())
            })
            .collect();
        keys.sort();
        keys
    }
}

/// The file at `path` under [`MAX_BUNDLE_FILE_BYTES`], `None` when missing
/// (one open that never follows a link nor blocks on a pipe).
fn read_bounded(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    use crate::source::Source;
    crate::source::WorkDir
        .read(path, MAX_BUNDLE_FILE_BYTES)
        .map_err(|source| KeysError::VaultIo {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
}
