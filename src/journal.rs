//! The store phase's redo journal: how apply rewrites thousands of JWT
//! files in place, without one new inode and one rename per file, and
//! still leaves no file half-written after a crash.
//!
//! A rename over a file frees the old file's inode; on some file systems
//! that is most of the cost of re-issuing 10,000 users (ext4 with `discard`
//! waits for the device on every freed block, and without a journal it then
//! skips recently freed inodes one by one when it allocates the next
//! temporary files). Writing the new bytes into the existing file needs
//! neither, but is not atomic: a crash can leave a file with part of its new
//! bytes. So before the first such write, [`crate::fsutil::Batch::commit`]
//! makes durable a journal, `.natsform-journal` in the project directory,
//! holding every file it is about to overwrite with its new bytes; it
//! removes the journal once those files are durable. A journal on disk
//! therefore means "an apply was interrupted while it rewrote these files":
//! `apply` finishes it ([`finish`], before it reads anything else) and every
//! command that reads the store refuses until then ([`refuse_interrupted`]).
//!
//! The journal is one file ending in the SHA-256 of everything before it: a
//! journal cut short (the crash came before it was durable, so no file was
//! touched yet) or altered does not verify and is removed without being
//! used. A journal that verifies may still come from anyone who can commit
//! to the repository: it can only name `.jwt` files under the project
//! directory, through directories that are not links, and what it writes
//! there is read and verified like any committed store file afterwards —
//! it can do nothing a commit of those files could not.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::safepath::{check_no_links, is_safe_name};
use crate::source::Source;

/// The journal's name, in the project directory.
pub const JOURNAL_FILE: &str = ".natsform-journal";

const MAGIC: &[u8] = b"natsform-journal 1\n";

/// The largest journal read (1 GiB: 100,000 users re-issued make ~100 MB).
const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// From this many files to overwrite on, a batch that may journal does:
/// below it, one temporary file and a rename each cost less than the
/// journal's two syncs.
pub(crate) const JOURNAL_FROM: usize = 64;

/// The journal's bytes for `entries` (each a path relative to the project
/// directory, `/`-separated, and the file's new bytes).
pub(crate) fn encode(entries: &[(String, &[u8])]) -> Vec<u8> {
    let size: usize = entries.iter().map(|(p, b)| p.len() + b.len() + 24).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + size + 80);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("{}\n", entries.len()).as_bytes());
    for (path, bytes) in entries {
        out.extend_from_slice(format!("{path}\n{}\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        out.push(b'\n');
    }
    let digest = hex(&Sha256::digest(&out));
    out.extend_from_slice(format!("end {digest}\n").as_bytes());
    out
}

/// The entries of a journal, or `None` when it is not one whole journal
/// (cut short, altered, or not a journal at all).
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    // The trailer: "end " + 64 hex digits + "\n".
    let body_len = bytes.len().checked_sub(69)?;
    let (body, trailer) = bytes.split_at(body_len);
    let digest = trailer.strip_prefix(b"end ")?.strip_suffix(b"\n")?;
    if digest != hex(&Sha256::digest(body)).as_bytes() {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let count: usize = std::str::from_utf8(line(&mut rest)?).ok()?.parse().ok()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let path = std::str::from_utf8(line(&mut rest)?).ok()?.to_string();
        let len: usize = std::str::from_utf8(line(&mut rest)?).ok()?.parse().ok()?;
        if rest.len() < len + 1 || rest[len] != b'\n' {
            return None;
        }
        entries.push((path, rest[..len].to_vec()));
        rest = &rest[len + 1..];
    }
    rest.is_empty().then_some(entries)
}

/// The next line of `rest` (without its newline), `rest` moved past it.
fn line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let (l, r) = rest.split_at(end);
    *rest = &r[1..];
    Some(l)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `target` relative to `base`, as the journal names it; `None` when it is
/// not under `base` or not a path [`resolve`] would accept back.
pub(crate) fn relative(base: &Path, target: &Path) -> Option<String> {
    let rel = target.strip_prefix(base).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let joined = parts.join("/");
    resolve(base, &joined).is_some().then_some(joined)
}

/// The file a journal entry names: only a `.jwt` file, under `base`, each
/// component a safe name (no `..`, no hidden or absolute parts).
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.len() < 2 || !parts.iter().all(|p| is_safe_name(p)) || !parts.last()?.ends_with(".jwt")
    {
        return None;
    }
    Some(parts.iter().fold(base.to_path_buf(), |p, c| p.join(c)))
}

/// Writes `bytes` over the regular file at `path`, in place (same inode),
/// and returns it open, not yet synced. Refuses a link (never followed), a
/// file that is not regular, or one with other names (a hard link: writing
/// in place would change those too).
pub(crate) fn overwrite_in_place(path: &Path, bytes: &[u8]) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let mut file = options.open(path).map_err(context)?;
    let meta = file.metadata().map_err(context)?;
    if !meta.is_file() || links(&meta) != 1 {
        return Err(io::Error::other(format!(
            "{} changed while apply wrote it (no longer one regular file)",
            path.display()
        )));
    }
    file.write_all(bytes).map_err(context)?;
    // Cut the old tail, if there is one.
    if meta.len() > bytes.len() as u64 {
        file.set_len(bytes.len() as u64).map_err(context)?;
    }
    Ok(file)
}

/// How many names the file has (1 where the OS cannot say).
pub(crate) fn links(meta: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

/// Makes the journal for `entries` durable in `base` (a temporary file,
/// synced, renamed, the directory synced): two syncs whatever its size.
pub(crate) fn write(base: &Path, entries: &[(String, &[u8])]) -> io::Result<()> {
    let bytes = encode(entries);
    let mut tmp = tempfile::Builder::new()
        .prefix(crate::fsutil::TEMP_PREFIX)
        .suffix(crate::fsutil::TEMP_SUFFIX)
        .tempfile_in(base)?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(base.join(JOURNAL_FILE)).map_err(|e| e.error)?;
    crate::fsutil::sync_dir_strict(base)
}

/// Removes the journal once what it names is durable. A removal that does
/// not reach the disk only means the next apply writes the same bytes
/// again.
pub(crate) fn remove(base: &Path) -> io::Result<()> {
    fs::remove_file(base.join(JOURNAL_FILE))?;
    if let Ok(d) = fs::File::open(base) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The error for a command that reads the store while a journal is there.
pub fn refuse_interrupted(src: &dyn Source, base: &Path) -> io::Result<()> {
    match src.kind(&base.join(JOURNAL_FILE))? {
        None => Ok(()),
        Some(_) => Err(io::Error::other(format!(
            "an apply was interrupted while it rewrote files of the store ({} holds what it was writing); the store cannot be read until they are finished\n  = help: run `natsform apply`: it finishes those writes before anything else",
            src.shown(&base.join(JOURNAL_FILE)).display()
        ))),
    }
}

/// What [`finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// No journal.
    Nothing,
    /// A journal that was not whole (the crash came before it was durable,
    /// so no file had been touched) was removed unused.
    Discarded,
    /// This many files were written again from a whole journal.
    Rewritten(usize),
}

/// Finishes the writes of an interrupted apply from the journal in `base`,
/// if there is one: every file it names gets its bytes (in place, or by a
/// temporary file and a rename when the file is gone or has other names),
/// durably; then the journal goes. The caller holds the run lock.
pub fn finish(base: &Path) -> io::Result<Finished> {
    let path = base.join(JOURNAL_FILE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Finished::Nothing),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file (natsform's journal is one); remove it",
            path.display()
        )));
    }
    let bytes = read_no_follow(&path)?;
    let Some(entries) = decode(&bytes) else {
        remove(base)?;
        return Ok(Finished::Discarded);
    };
    let targets: Vec<(PathBuf, &[u8])> = entries
        .iter()
        .map(|(rel, bytes)| {
            resolve(base, rel)
                .map(|p| (p, bytes.as_slice()))
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "{} names {:?}, which is not a JWT file under the project directory; nothing was written\n  = help: remove {} if you did not make it",
                        path.display(),
                        crate::safepath::escape_line(rel),
                        path.display()
                    ))
                })
        })
        .collect::<io::Result<_>>()?;
    let open: Vec<io::Result<Option<fs::File>>> = targets
        .par_iter()
        .map(|(target, bytes)| {
            let dir = target.parent().unwrap_or(base);
            check_no_links(base, dir)?;
            match fs::symlink_metadata(target) {
                Ok(m) if m.is_file() && links(&m) == 1 => {
                    overwrite_in_place(target, bytes).map(Some)
                }
                // A directory removed since: nothing of it is kept.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.is_dir() => Ok(None),
                // Gone, a link, or a file with other names: replaced, never followed.
                _ => crate::fsutil::write_atomic(target, bytes, 0o600).map(|_| None),
            }
        })
        .collect();
    let files: Vec<fs::File> = open
        .into_iter()
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    crate::fsutil::sync_files(&files, base)?;
    remove(base)?;
    Ok(Finished::Rewritten(targets.len()))
}

fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut out = Vec::new();
    options
        .open(path)?
        .take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(io::Error::other(format!(
            "{} is larger than any journal natsform writes; remove it",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_decodes_to_its_entries_and_any_cut_or_change_is_refused() {
        let entries = vec![
            ("store/O/O.jwt".to_string(), &b"a.b.c"[..]),
            ("store/O/accounts/A/users/u.jwt".to_string(), &b"x\ny"[..]),
        ];
        let bytes = encode(&entries);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], (entries[1].0.clone(), b"x\ny".to_vec()));
        for cut in [0, 1, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut changed = bytes.clone();
        changed[MAGIC.len() + 5] ^= 1;
        assert!(decode(&changed).is_none());
        assert_eq!(decode(&encode(&[])).unwrap().len(), 0);
    }

    #[test]
    fn only_jwt_files_under_the_base_can_be_named() {
        let base = Path::new("/p");
        assert!(resolve(base, "store/O/O.jwt").is_some());
        for bad in [
            "O.jwt",
            "../x/O.jwt",
            "store/../O.jwt",
            "/etc/x.jwt",
            "store//O.jwt",
            "store/.hidden/O.jwt",
            "store/O/O.age",
            "store/O/.nsc",
            "store/O\\..\\x.jwt",
        ] {
            assert!(resolve(base, bad).is_none(), "{bad}");
        }
        assert_eq!(
            relative(base, Path::new("/p/store/O/O.jwt")).as_deref(),
            Some("store/O/O.jwt")
        );
        assert_eq!(relative(base, Path::new("/q/store/O/O.jwt")), None);
    }

    #[test]
    fn finishing_rewrites_every_named_file_and_removes_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let users = base.join("store/O/accounts/A/users");
        fs::create_dir_all(&users).unwrap();
        // A longer old file: the new bytes must not keep its tail.
        fs::write(users.join("u.jwt"), b"old-old-old-old").unwrap();
        fs::write(users.join("half.jwt"), b"new").unwrap();
        let inode = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(p).unwrap().ino()
        };
        let before = inode(&users.join("u.jwt"));
        write(
            base,
            &[
                ("store/O/accounts/A/users/u.jwt".into(), b"new-u"),
                ("store/O/accounts/A/users/half.jwt".into(), b"new-half"),
                ("store/O/accounts/A/users/gone.jwt".into(), b"new-gone"),
                ("store/O/accounts/B/users/nodir.jwt".into(), b"x"),
            ],
        )
        .unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Rewritten(4));
        assert_eq!(fs::read(users.join("u.jwt")).unwrap(), b"new-u");
        assert_eq!(inode(&users.join("u.jwt")), before, "rewritten in place");
        assert_eq!(fs::read(users.join("half.jwt")).unwrap(), b"new-half");
        assert_eq!(fs::read(users.join("gone.jwt")).unwrap(), b"new-gone");
        assert!(!base.join("store/O/accounts/B").exists());
        assert!(!base.join(JOURNAL_FILE).exists());
        assert_eq!(finish(base).unwrap(), Finished::Nothing);
    }

    #[test]
    fn a_journal_cut_short_is_removed_unused_and_a_hostile_one_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("store/O")).unwrap();
        fs::write(base.join("store/O/O.jwt"), b"old").unwrap();
        let whole = encode(&[("store/O/O.jwt".into(), b"new")]);
        fs::write(base.join(JOURNAL_FILE), &whole[..whole.len() - 3]).unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Discarded);
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");
        assert!(!base.join(JOURNAL_FILE).exists());

        // Whole, but one entry escapes: refused before any write.
        let hostile = encode(&[
            ("store/O/O.jwt".into(), b"new"),
            ("store/../../x.jwt".into(), b"evil"),
        ]);
        fs::write(base.join(JOURNAL_FILE), hostile).unwrap();
        let e = finish(base).unwrap_err().to_string();
        assert!(
            e.contains("not a JWT file under the project directory"),
            "{e}"
        );
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");

        // Through a directory that is a link: refused, nothing written.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("O.jwt"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("store/L")).unwrap();
        fs::write(
            base.join(JOURNAL_FILE),
            encode(&[("store/L/O.jwt".into(), b"evil")]),
        )
        .unwrap();
        assert!(finish(base).is_err());
        assert_eq!(fs::read(outside.path().join("O.jwt")).unwrap(), b"outside");
    }

    #[test]
    fn a_file_with_another_name_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("store/O")).unwrap();
        fs::write(base.join("other"), b"keep").unwrap();
        fs::hard_link(base.join("other"), base.join("store/O/O.jwt")).unwrap();
        assert!(overwrite_in_place(&base.join("store/O/O.jwt"), b"x").is_err());
        write(base, &[("store/O/O.jwt".into(), b"new")]).unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Rewritten(1));
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"new");
        assert_eq!(fs::read(base.join("other")).unwrap(), b"keep");
    }
}
