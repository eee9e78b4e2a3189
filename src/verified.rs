//! The verified-signature cache: which exact JWT bytes this user's earlier
//! runs already verified, so that a plan pays one Ed25519 verification per
//! changed JWT rather than per stored JWT.
//!
//! Whether a JWT's signature verifies (by the key its `iss` names) is a pure
//! function of its bytes, so a verification is remembered by the SHA-256 of
//! the whole token (header, payload, signature): any change to a single
//! byte gives another digest, which is verified again. Only the Ed25519
//! check is skipped for a remembered digest; the envelope, header, claims
//! and kind checks, and the planner's issuer-chain checks, run on every JWT.
//!
//! The cache never lives in the repository (a committer must not be able
//! to say "this was verified"): it is
//! `$XDG_CACHE_HOME/natsform/verified/<sha256 of the canonical project
//! directory>` (or `$HOME/.cache/…`; neither set, or not absolute: no
//! cache). The file is versioned binary, its digests sorted; it is read
//! without following a link, only when it and its directories belong to
//! this user and nobody else can write them, and under a size limit.
//! Anything else is an empty cache (and a note), never an error. It is
//! written atomically, mode 0600 in 0700 directories, only when its
//! contents change, and holds exactly the digests of the store's JWTs
//! whose signatures verified.
//!
//! Beside it, `…/natsform/checked-bundles/<same name>` (same format, rules
//! and trust, another tag) remembers the exact bytes of the bundles of user
//! seeds that this user's `apply` sealed: every line of such a bundle was
//! checked (or generated) before it was sealed, so opening the same bytes
//! again need not derive every seed's key once more (`apply` re-seals a
//! bundle of 10,000 users to delete one). A line is still checked whenever
//! its seed is used.

use std::path::{Path, PathBuf};

use crate::cachefile::{self, esc, Unusable};

use sha2::{Digest as _, Sha256};

/// SHA-256 of a token's bytes.
pub type Digest = [u8; 32];

/// The most digests a cache file may hold (64 MiB): more than any store
/// natsform reads (its JWT limits) would give.
pub const MAX_DIGESTS: u64 = 2_000_000;

const MAGIC: &[u8; 8] = b"NFVSIG\0\x01";
const HEADER_LEN: u64 = 8 + 32 + 8;

/// The digest a verification is remembered by.
pub fn digest(token: &str) -> Digest {
    digest_bytes(token.as_bytes())
}

/// The digest of a file's bytes (a sealed bundle).
pub fn digest_bytes(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// What a cache remembers: each is its own file, with its own tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Tokens whose Ed25519 signature verified.
    Signatures,
    /// Sealed bundles of user seeds whose every line holds its key's seed.
    Bundles,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Signatures => "verified",
            Kind::Bundles => "checked-bundles",
        }
    }

    /// What the writing natsform was and what the digests mean: a cache
    /// written by another version is ignored (its rules may differ), and
    /// one kind's file is never read as the other's.
    fn tag(self) -> Digest {
        let what = match self {
            Kind::Signatures => " ed25519-nkey verified signatures",
            Kind::Bundles => " user seed bundles checked line by line",
        };
        let mut h = Sha256::new();
        h.update(concat!("natsform ", env!("CARGO_PKG_VERSION")).as_bytes());
        h.update(what.as_bytes());
        h.finalize().into()
    }
}

/// Digests of tokens whose signatures verified in an earlier run (sorted,
/// distinct), with where each leading-bits bucket of them starts.
///
/// Why the buckets: a plan looks up every stored JWT (100,000) in a sorted
/// list of as many digests (3.2 MB); a binary search there misses the CPU
/// cache at nearly each of its 17 steps, and those lookups were 4-5 % of a
/// no-change plan's samples. SHA-256 digests spread evenly, so the bucket
/// of a digest's leading bits holds one or two of them; the search runs
/// in that bucket only. Digests that do not spread (a hand-made cache) only
/// make buckets larger: the search is still a binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    digests: Vec<Digest>,
    /// `starts[b]`: the first digest whose leading `bits` bits are `b` or
    /// more; `2^bits + 1` entries (none when there are no digests).
    starts: Vec<u32>,
    bits: u32,
}

impl Remembered {
    /// From digests sorted and distinct.
    fn of_sorted(digests: Vec<Digest>) -> Remembered {
        debug_assert!(digests.windows(2).all(|w| w[0] < w[1]));
        if digests.is_empty() {
            return Remembered::default();
        }
        // About one digest a bucket, at most 2^16 buckets (256 KiB).
        let bits = (usize::BITS - (digests.len() - 1).leading_zeros()).min(16);
        let buckets = 1usize << bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for b in 0..buckets {
            while i < digests.len() && bucket(&digests[i], bits) < b {
                i += 1;
            }
            starts.push(i as u32);
        }
        starts.push(digests.len() as u32);
        Remembered {
            digests,
            starts,
            bits,
        }
    }

    /// Whether these exact bytes were verified before.
    pub fn contains(&self, d: &Digest) -> bool {
        if self.digests.is_empty() {
            return false;
        }
        let b = bucket(d, self.bits);
        let (from, to) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        self.digests[from..to].binary_search(d).is_ok()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// The digests, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Digest> {
        self.digests.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// From digests in any order (for tests and callers that built them).
    pub fn from_digests(mut digests: Vec<Digest>) -> Remembered {
        digests.sort_unstable();
        digests.dedup();
        Remembered::of_sorted(digests)
    }
}

/// The leading `bits` bits (at most 16) of a digest.
fn bucket(d: &Digest, bits: u32) -> usize {
    (u16::from_be_bytes([d[0], d[1]]) as usize) >> (16 - bits)
}

/// Where one project's cache file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// `…/natsform/verified/<hex>` (or `checked-bundles/`).
    file: PathBuf,
    kind: Kind,
}

impl Cache {
    /// The cache of the project in `project_dir`, from the environment:
    /// `None` when there is no absolute `XDG_CACHE_HOME` nor `HOME`, or the
    /// directory has no canonical form.
    pub fn for_project(project_dir: &Path) -> Option<Cache> {
        let root = cachefile::root_from_env()?;
        let canonical = std::fs::canonicalize(project_dir).ok()?;
        Some(Cache::at(&root, &canonical))
    }

    /// The cache of the project `canonical_dir` under cache root `root`.
    pub fn at(root: &Path, canonical_dir: &Path) -> Cache {
        Cache {
            file: cachefile::file_for(root, Kind::Signatures.dir(), canonical_dir),
            kind: Kind::Signatures,
        }
    }

    /// The same project's cache of the other `kind`, beside this one.
    pub fn of_kind(&self, kind: Kind) -> Cache {
        let name = self.file.file_name().expect("a file name");
        let natsform = self
            .file
            .parent()
            .and_then(Path::parent)
            .expect("under natsform/");
        Cache {
            file: natsform.join(kind.dir()).join(name),
            kind,
        }
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The remembered digests; an absent cache is empty, and so is one
    /// that cannot be trusted or read (with a note saying why).
    pub fn load(&self) -> (Remembered, Option<String>) {
        match self.read() {
            Ok(r) => (r, None),
            Err(Unusable::Absent) => (Remembered::default(), None),
            Err(Unusable::Ignored(why)) => (
                Remembered::default(),
                Some(match self.kind {
                    Kind::Signatures => format!(
                        "ignored the verification cache {} ({why}); every signature was verified",
                        esc(&self.file)
                    ),
                    Kind::Bundles => format!(
                        "ignored the cache of checked bundles {} ({why}); every line of the bundles re-sealed was checked",
                        esc(&self.file)
                    ),
                }),
            ),
        }
    }

    fn read(&self) -> Result<Remembered, Unusable> {
        let bytes = cachefile::read(&self.file, HEADER_LEN + 32 * MAX_DIGESTS)?;
        parse(self.kind, &bytes).map_err(|why| Unusable::Ignored(why.into()))
    }

    /// Removes the cache file (a link in its place is removed, never
    /// followed; a directory is left alone). `Ok(true)` when one was there.
    pub fn forget(&self) -> Result<bool, String> {
        cachefile::forget(&self.file)
    }

    /// Makes the cache hold exactly `digests` (in any order); writes only
    /// when that changes the file. `Ok(true)` when written.
    pub fn save(&self, digests: &[Digest]) -> Result<bool, String> {
        let mut sorted = digests.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        // Unchanged bytes are not written again (`cachefile::write`).
        cachefile::write(&self.file, &serialize(self.kind, &sorted))
    }
}

fn serialize(kind: Kind, sorted: &[Digest]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN as usize + 32 * sorted.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&kind.tag());
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    for d in sorted {
        out.extend_from_slice(d);
    }
    out
}

fn parse(kind: Kind, bytes: &[u8]) -> Result<Remembered, &'static str> {
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return Err("not a natsform verification cache");
    }
    if bytes[8..40] != kind.tag() {
        return Err("written by another version of natsform, or for something else");
    }
    let count = u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes"));
    if count > MAX_DIGESTS || bytes.len() as u64 != HEADER_LEN + 32 * count {
        return Err("damaged: its length does not match its count");
    }
    let digests: Vec<Digest> = bytes[HEADER_LEN as usize..]
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    if digests.windows(2).any(|w| w[0] >= w[1]) {
        return Err("damaged: its digests are not sorted");
    }
    Ok(Remembered::of_sorted(digests))
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cache(root: &Path) -> Cache {
        Cache::at(root, Path::new("/some/project"))
    }

    /// Writes a file only this user can write, whatever the umask.
    fn put(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The bucketed lookup answers as a search of the whole list does: for
    /// sizes around each power of two, digests that spread (SHA-256) and
    /// digests that all share their leading bits, present and absent.
    #[test]
    fn lookup_agrees_with_a_search_of_every_digest() {
        for n in [0usize, 1, 2, 3, 7, 8, 9, 255, 256, 257, 5000, 70_000] {
            let spread: Vec<Digest> = (0..n).map(|i| digest(&i.to_string())).collect();
            let mut skewed = spread.clone();
            skewed.iter_mut().for_each(|d| (d[0], d[1]) = (0xab, 0xcd));
            for all in [spread, skewed] {
                let (held, absent) = all.split_at(all.len() / 2);
                let r = Remembered::from_digests(held.to_vec());
                assert!(held.iter().all(|d| r.contains(d)), "n={n}");
                assert!(absent.iter().all(|d| !r.contains(d)), "n={n}");
                for edge in [[0u8; 32], [0xff; 32]] {
                    assert_eq!(r.contains(&edge), held.contains(&edge));
                }
            }
        }
    }

    #[test]
    fn round_trip_and_no_rewrite_when_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path());
        assert_eq!(c.load(), (Remembered::default(), None));
        let ds = vec![digest("b"), digest("a"), digest("b")];
        assert_eq!(c.save(&ds), Ok(true));
        let (r, note) = c.load();
        assert_eq!(note, None);
        assert_eq!(r.len(), 2);
        assert!(r.contains(&digest("a")) && !r.contains(&digest("c")));
        let mtime = std::fs::metadata(c.path()).unwrap().modified().unwrap();
        assert_eq!(c.save(&[digest("a"), digest("b")]), Ok(false));
        assert_eq!(
            std::fs::metadata(c.path()).unwrap().modified().unwrap(),
            mtime
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(c.path()), 0o600);
        assert_eq!(mode(c.path().parent().unwrap()), 0o700);
        assert_eq!(mode(c.path().parent().unwrap().parent().unwrap()), 0o700);
        // Exactly the digests given: a JWT gone from the store is forgotten.
        assert_eq!(c.save(&[digest("a")]), Ok(true));
        assert_eq!(c.load().0, Remembered::from_digests(vec![digest("a")]));
    }

    #[test]
    fn the_name_is_a_digest_of_the_project_directory() {
        let a = Cache::at(Path::new("/c"), Path::new("/p/one"));
        let b = Cache::at(Path::new("/c"), Path::new("/p/two"));
        assert_ne!(a, b);
        let name = a.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 64);
        assert!(a.path().starts_with("/c/natsform/verified"));
    }

    /// Each kind is its own file beside the other, and a file written for
    /// one kind is never read as the other (their digests mean different
    /// things).
    #[test]
    fn the_bundle_cache_is_a_sibling_that_never_reads_the_signature_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let signatures = cache(tmp.path());
        let bundles = signatures.of_kind(Kind::Bundles);
        assert_eq!(bundles.path().file_name(), signatures.path().file_name());
        assert!(bundles.path().ends_with(
            Path::new("natsform/checked-bundles").join(signatures.path().file_name().unwrap())
        ));
        assert_eq!(bundles.of_kind(Kind::Signatures), signatures);
        assert_eq!(signatures.save(&[digest("a")]), Ok(true));
        assert_eq!(bundles.load(), (Remembered::default(), None));
        assert_eq!(bundles.save(&[digest_bytes(b"b")]), Ok(true));
        assert!(signatures.load().0.contains(&digest("a")));
        assert!(bundles.load().0.contains(&digest("b")));
        // The signature cache's bytes in the bundle cache's place.
        std::fs::copy(signatures.path(), bundles.path()).unwrap();
        let (r, note) = bundles.load();
        assert!(r.is_empty());
        let note = note.unwrap();
        assert!(note.contains("cache of checked bundles"), "{note}");
        assert!(note.contains("for something else"), "{note}");
    }

    /// Forgetting removes the file only: a link in its place goes, what it
    /// points at stays; a directory is refused.
    #[test]
    fn forgetting_removes_the_file_never_what_a_link_names() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path()).of_kind(Kind::Bundles);
        assert_eq!(c.forget(), Ok(false));
        c.save(&[digest("a")]).unwrap();
        assert_eq!(c.forget(), Ok(true));
        assert!(!c.path().exists());
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, c.path()).unwrap();
        assert_eq!(c.forget(), Ok(true));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        std::fs::create_dir(c.path()).unwrap();
        assert!(c.forget().unwrap_err().contains("is a directory"));
    }

    #[test]
    fn garbage_huge_foreign_or_linked_caches_are_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path());
        c.save(&[digest("a")]).unwrap();
        let good = std::fs::read(c.path()).unwrap();
        let ignored = |c: &Cache| {
            let (r, note) = c.load();
            assert!(r.is_empty());
            note.expect("a note says why")
        };
        // Garbage, truncated, unsorted, another version's, oversized.
        put(c.path(), b"hello");
        assert!(ignored(&c).contains("not a natsform"));
        put(c.path(), &good[..good.len() - 1]);
        assert!(ignored(&c).contains("damaged"));
        let mut pair = [digest("a"), digest("b")];
        pair.sort_unstable();
        let mut two = serialize(Kind::Signatures, &pair);
        let (x, y) = two.split_at_mut(HEADER_LEN as usize + 32);
        x[HEADER_LEN as usize..].swap_with_slice(&mut y[..32]);
        put(c.path(), &two);
        assert!(ignored(&c).contains("not sorted"));
        let mut other = good.clone();
        other[8] ^= 1;
        put(c.path(), &other);
        assert!(ignored(&c).contains("another version"));
        put(c.path(), b"");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(c.path())
            .unwrap();
        f.set_len(HEADER_LEN + 32 * MAX_DIGESTS + 32).unwrap();
        assert!(ignored(&c).contains("more than"));
        // A huge count with a short file is damaged, not an allocation.
        let mut lying = good.clone();
        lying[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        put(c.path(), &lying);
        assert!(ignored(&c).contains("damaged"));
        // A link to a good cache is not followed, and saving replaces the
        // link, not its target.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, &good).unwrap();
        std::fs::remove_file(c.path()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, c.path()).unwrap();
        assert!(ignored(&c).contains("symbolic link"));
        assert_eq!(c.save(&[digest("z")]), Ok(true));
        assert!(!std::fs::symlink_metadata(c.path())
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&elsewhere).unwrap(), good);
        // A directory others can write is not trusted.
        let dir = c.path().parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ignored(&c).contains("written by others"));
        assert!(c.save(&[digest("z")]).is_err());
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A linked directory on the way is not followed.
        let natsform = dir.parent().unwrap();
        let moved = tmp.path().join("moved");
        std::fs::rename(natsform, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, natsform).unwrap();
        assert!(ignored(&c).contains("symbolic link"));
        assert!(c.save(&[digest("z")]).is_err());
    }

    #[test]
    fn a_fifo_in_its_place_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cache(tmp.path());
        c.save(&[]).unwrap();
        std::fs::remove_file(c.path()).unwrap();
        let path = std::ffi::CString::new(c.path().to_str().unwrap()).unwrap();
        // SAFETY: a valid C string and mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        assert!(c.load().1.unwrap().contains("not a regular file"));
        assert_eq!(c.save(&[digest("a")]), Ok(true));
        assert_eq!(c.load().0.len(), 1);
    }
}
