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
//! used. It records the SHA-256 of `natsform.lock` as the apply left it
//! (the lock phase comes before the store phase): a journal found beside
//! another lock belongs to another state of the project (a branch checked
//! out since, a reset) and is removed unused too. Before the journal is
//! removed it is emptied and synced, so one that comes back after a crash
//! is not whole. A journal that verifies may still come from anyone who can
//! commit to the repository: it can only rewrite `.jwt` files that exist
//! under the project directory (never create one), each named once, through
//! directories that are not links, and what it writes there is read and
//! verified like any committed store file afterwards — it can do nothing a
//! commit of those files could not.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::safepath::{check_no_links, is_safe_name};
use crate::source::{Source, WorkDir, MAX_LOCK_BYTES};
use crate::store::JWT_FILE_MODE as STORE_MODE;
use crate::verified::hex;
use crate::workspace::LOCK_FILE;

/// The journal's name, in the project directory.
pub const JOURNAL_FILE: &str = ".natsform-journal";

const MAGIC: &[u8] = b"natsform-journal 1\n";

/// The largest journal written or read (1 GiB: 100,000 users re-issued
/// make ~100 MB); a batch that would need more writes by rename.
pub(crate) const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// From this many files to overwrite on, a batch that may journal does:
/// below it, one temporary file and a rename each cost less than the
/// journal's two syncs.
pub(crate) const JOURNAL_FROM: usize = 64;

/// At most the size of the journal of entries whose paths and bytes have
/// these lengths, before it is made.
pub(crate) fn encoded_len(lengths: impl IntoIterator<Item = (usize, usize)>) -> u64 {
    let size: usize = lengths.into_iter().map(|(p, b)| p + b + 24).sum();
    (MAGIC.len() + 100 + 69 + size) as u64
}

/// The journal's bytes for `entries` (each a path relative to the project
/// directory, `/`-separated, and the file's new bytes), written beside the
/// lock whose digest is `lock`.
pub(crate) fn encode(lock: &str, entries: &[(String, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(sizes(entries)) as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("lock {lock}\n{}\n", entries.len()).as_bytes());
    for (path, bytes) in entries {
        out.extend_from_slice(format!("{path}\n{}\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        out.push(b'\n');
    }
    let digest = hex(&Sha256::digest(&out));
    out.extend_from_slice(format!("end {digest}\n").as_bytes());
    out
}

/// The lengths [`encoded_len`] takes, of `entries`.
fn sizes<'a>(entries: &'a [(String, &[u8])]) -> impl Iterator<Item = (usize, usize)> + 'a {
    entries.iter().map(|(p, b)| (p.len(), b.len()))
}

/// A whole journal: the lock digest it was written beside, its entries.
type Journal = (String, Vec<(String, Vec<u8>)>);

/// The journal in `bytes`, or `None` when it is not one whole journal (cut
/// short, altered, or not a journal at all).
pub(crate) fn decode(bytes: &[u8]) -> Option<Journal> {
    // The trailer: "end " + 64 hex digits + "\n".
    let body_len = bytes.len().checked_sub(69)?;
    let (body, trailer) = bytes.split_at(body_len);
    let digest = trailer.strip_prefix(b"end ")?.strip_suffix(b"\n")?;
    if digest != hex(&Sha256::digest(body)).as_bytes() {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let lock = std::str::from_utf8(line(&mut rest)?.strip_prefix(b"lock ")?)
        .ok()?
        .to_string();
    let count: usize = std::str::from_utf8(line(&mut rest)?).ok()?.parse().ok()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let path = std::str::from_utf8(line(&mut rest)?).ok()?.to_string();
        let len: usize = std::str::from_utf8(line(&mut rest)?).ok()?.parse().ok()?;
        if rest.len() <= len || rest[len] != b'\n' {
            return None;
        }
        entries.push((path, rest[..len].to_vec()));
        rest = &rest[len + 1..];
    }
    rest.is_empty().then_some((lock, entries))
}

/// The next line of `rest` (without its newline), `rest` moved past it.
fn line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let (l, r) = rest.split_at(end);
    *rest = &r[1..];
    Some(l)
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

/// Whether the file `meta` describes may be rewritten in place: a regular
/// file with no other name (a hard link would change too), owned by this
/// process's user and writable by it (else a rename replaces it, as before
/// the journal). Never on other systems than Unix.
pub(crate) fn in_place_ok(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        meta.is_file() && meta.nlink() == 1 && meta.uid() == me && meta.mode() & 0o200 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Writes `bytes` over the file at `path`, in place (same inode), with
/// Unix `mode`; not synced, closed. Refuses a link (never followed) and a
/// file [`in_place_ok`] does not accept once open.
pub(crate) fn overwrite_in_place(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let mut file = crate::fsutil::open_no_follow(path).map_err(context)?;
    let meta = file.metadata().map_err(context)?;
    if !in_place_ok(&meta) {
        return Err(io::Error::other(format!(
            "{} changed while apply wrote it (no longer one regular file of ours)",
            path.display()
        )));
    }
    file.write_all(bytes).map_err(context)?;
    // Cut the old tail, if there is one.
    if meta.len() > bytes.len() as u64 {
        file.set_len(bytes.len() as u64).map_err(context)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o7777 != mode {
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(context)?;
        }
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// The SHA-256 of the project's lock as it is now (`none` without one),
/// read without following a link.
fn lock_digest(base: &Path) -> io::Result<String> {
    Ok(match WorkDir.read(&base.join(LOCK_FILE), MAX_LOCK_BYTES)? {
        Some(bytes) => hex(&Sha256::digest(bytes)),
        None => "none".to_string(),
    })
}

/// Makes the journal for `entries` durable in `base` (a temporary file,
/// synced, renamed, the directory synced): two syncs whatever its size.
pub(crate) fn write(base: &Path, entries: &[(String, &[u8])]) -> io::Result<()> {
    let bytes = encode(&lock_digest(base)?, entries);
    let mut tmp = tempfile::Builder::new()
        .prefix(crate::fsutil::TEMP_PREFIX)
        .suffix(crate::fsutil::TEMP_SUFFIX)
        .tempfile_in(base)?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(base.join(JOURNAL_FILE)).map_err(|e| e.error)?;
    crate::fsutil::sync_dir_strict(base)
}

/// Removes the journal once what it names is durable: emptied and synced
/// first, so that a journal whose removal did not reach the disk comes
/// back empty (not whole: never used), then removed.
pub(crate) fn remove(base: &Path) -> io::Result<()> {
    let path = base.join(JOURNAL_FILE);
    if let Ok(f) = crate::fsutil::open_no_follow(&path) {
        f.set_len(0)?;
        f.sync_all()?;
    }
    fs::remove_file(&path)?;
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
            "an apply was interrupted while it rewrote files of the store ({} holds what it was writing); the store cannot be read until they are finished\n  = help: run `natsform apply` in that checkout: it finishes those writes before anything else. The journal is never committed (`natsform init` adds it to .gitignore): if git tracks it, `git rm` it",
            src.shown(&base.join(JOURNAL_FILE)).display()
        ))),
    }
}

/// What [`finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// No journal.
    Nothing,
    /// A journal that is not whole (cut short before it was durable, so no
    /// file had been touched; emptied on removal; or altered) was removed
    /// unused.
    Discarded,
    /// A whole journal written beside another `natsform.lock` (the project
    /// changed since: another branch, a reset) was removed unused.
    Stale,
    /// This many files were written again from a whole journal (files it
    /// names that are gone, or no longer regular files, are left alone).
    Rewritten(usize),
}

/// Finishes the writes of an interrupted apply from the journal in `base`,
/// if there is one: every file it names that is still a regular file gets
/// its bytes (in place, or by a temporary file and a rename when it has
/// other names or is not ours to write), durably; then the journal goes.
/// Nothing is written when any entry is refused. The caller holds the run
/// lock.
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
    let Some(bytes) = WorkDir
        .read(&path, MAX_JOURNAL_BYTES)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?
    else {
        return Ok(Finished::Nothing);
    };
    let Some((lock, entries)) = decode(&bytes) else {
        remove(base)?;
        return Ok(Finished::Discarded);
    };
    if lock != lock_digest(base)? {
        remove(base)?;
        return Ok(Finished::Stale);
    }
    let refused = |rel: &str, why: &str| {
        io::Error::other(format!(
            "{} names {:?}, {why}; nothing was written\n  = help: remove {} if natsform did not write it",
            path.display(),
            crate::safepath::escape_line(rel),
            path.display()
        ))
    };
    let mut seen = std::collections::HashSet::new();
    let mut targets: Vec<(PathBuf, &[u8])> = Vec::with_capacity(entries.len());
    for (rel, bytes) in &entries {
        let target = resolve(base, rel)
            .ok_or_else(|| refused(rel, "which is not a JWT file under the project directory"))?;
        if !seen.insert(rel.as_str()) {
            return Err(refused(rel, "twice"));
        }
        check_no_links(base, target.parent().unwrap_or(base))?;
        targets.push((target, bytes.as_slice()));
    }
    // Some(true): in place; Some(false): replaced (synced); None: left.
    let written: Vec<io::Result<Option<bool>>> = targets
        .par_iter()
        .map(|(target, bytes)| match fs::symlink_metadata(target) {
            Ok(m) if in_place_ok(&m) => {
                overwrite_in_place(target, bytes, STORE_MODE).map(|()| Some(true))
            }
            // Ours to replace, not to write through (other names, not ours).
            Ok(m) if m.is_file() => {
                crate::fsutil::write_atomic(target, bytes, STORE_MODE).map(|_| Some(false))
            }
            // Gone or no longer a file: an honest journal names only files
            // that existed, so nothing is created or followed.
            _ => Ok(None),
        })
        .collect();
    let written: Vec<Option<bool>> = written.into_iter().collect::<io::Result<_>>()?;
    let in_place: Vec<&Path> = targets
        .iter()
        .zip(&written)
        .filter(|(_, w)| **w == Some(true))
        .map(|((t, _), _)| t.as_path())
        .collect();
    crate::fsutil::sync_paths(&in_place)?;
    remove(base)?;
    Ok(Finished::Rewritten(written.iter().flatten().count()))
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
        let bytes = encode("none", &entries);
        assert!(
            bytes.len() as u64 <= encoded_len(sizes(&entries)),
            "an upper bound"
        );
        let (lock, back) = decode(&bytes).unwrap();
        assert_eq!(lock, "none");
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], (entries[1].0.clone(), b"x\ny".to_vec()));
        for cut in [0, 1, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut changed = bytes.clone();
        changed[MAGIC.len() + 12] ^= 1;
        assert!(decode(&changed).is_none());
        assert_eq!(decode(&encode("x", &[])).unwrap().1.len(), 0);
    }

    #[test]
    fn a_length_past_the_end_is_not_a_journal_and_does_not_panic() {
        // A whole journal (its digest right) whose entry claims more bytes
        // than there are, up to usize::MAX.
        for len in ["5", "18446744073709551615"] {
            let mut body = MAGIC.to_vec();
            body.extend_from_slice(format!("lock none\n1\nstore/O/O.jwt\n{len}\nab\n").as_bytes());
            let digest = hex(&Sha256::digest(&body));
            body.extend_from_slice(format!("end {digest}\n").as_bytes());
            assert!(decode(&body).is_none(), "{len}");
        }
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
        assert_eq!(relative(base, Path::new("/p/.jwts/O/O.jwt")), None);
    }

    #[cfg(unix)]
    fn inode(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(p).unwrap().ino()
    }

    #[cfg(unix)]
    #[test]
    fn finishing_rewrites_every_named_file_that_is_there_and_removes_the_journal() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let users = base.join("store/O/accounts/A/users");
        fs::create_dir_all(&users).unwrap();
        // A longer old file: the new bytes must not keep its tail.
        fs::write(users.join("u.jwt"), b"old-old-old-old").unwrap();
        fs::set_permissions(users.join("u.jwt"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::write(users.join("half.jwt"), b"new").unwrap();
        let before = inode(&users.join("u.jwt"));
        fs::write(base.join(LOCK_FILE), b"the lock").unwrap();
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
        assert_eq!(finish(base).unwrap(), Finished::Rewritten(2));
        assert_eq!(fs::read(users.join("u.jwt")).unwrap(), b"new-u");
        assert_eq!(inode(&users.join("u.jwt")), before, "rewritten in place");
        let mode = fs::metadata(users.join("u.jwt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            STORE_MODE,
            "the store's mode, not the old one"
        );
        assert_eq!(fs::read(users.join("half.jwt")).unwrap(), b"new-half");
        assert!(
            !users.join("gone.jwt").exists(),
            "a journal never creates a file"
        );
        assert!(!base.join("store/O/accounts/B").exists());
        assert!(!base.join(JOURNAL_FILE).exists());
        assert_eq!(finish(base).unwrap(), Finished::Nothing);
    }

    #[test]
    fn a_journal_cut_short_or_beside_another_lock_is_removed_unused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("store/O")).unwrap();
        fs::write(base.join("store/O/O.jwt"), b"old").unwrap();
        fs::write(base.join(LOCK_FILE), b"lock of this branch").unwrap();
        let whole = encode(
            &lock_digest(base).unwrap(),
            &[("store/O/O.jwt".into(), b"new")],
        );
        fs::write(base.join(JOURNAL_FILE), &whole[..whole.len() - 3]).unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Discarded);
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");
        assert!(!base.join(JOURNAL_FILE).exists());

        // Whole, but the lock changed since (another branch checked out).
        fs::write(base.join(JOURNAL_FILE), &whole).unwrap();
        fs::write(base.join(LOCK_FILE), b"lock of another branch").unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Stale);
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");
        assert!(!base.join(JOURNAL_FILE).exists());

        // Emptied by `remove` (whose unlink did not reach the disk).
        fs::write(base.join(JOURNAL_FILE), b"").unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Discarded);
    }

    #[cfg(unix)]
    #[test]
    fn a_hostile_journal_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("store/O")).unwrap();
        fs::write(base.join("store/O/O.jwt"), b"old").unwrap();
        let lock = lock_digest(base).unwrap();
        let plant = |entries: &[(String, &[u8])]| {
            fs::write(base.join(JOURNAL_FILE), encode(&lock, entries)).unwrap();
        };
        // One entry escapes: refused before any write.
        plant(&[
            ("store/O/O.jwt".into(), b"new"),
            ("store/../../x.jwt".into(), b"evil"),
        ]);
        let e = finish(base).unwrap_err().to_string();
        assert!(
            e.contains("not a JWT file under the project directory"),
            "{e}"
        );
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");
        // The same file twice.
        plant(&[
            ("store/O/O.jwt".into(), b"new"),
            ("store/O/O.jwt".into(), b"other"),
        ]);
        let e = finish(base).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"old");
        // Through a directory that is a link.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("O.jwt"), b"outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("store/L")).unwrap();
        plant(&[("store/L/O.jwt".into(), b"evil")]);
        assert!(finish(base).is_err());
        assert_eq!(fs::read(outside.path().join("O.jwt")).unwrap(), b"outside");
        // A new file where none was: not created.
        fs::remove_file(base.join("store/L")).unwrap();
        fs::create_dir_all(base.join("docs")).unwrap();
        plant(&[("docs/new.jwt".into(), b"planted")]);
        assert_eq!(finish(base).unwrap(), Finished::Rewritten(0));
        assert!(!base.join("docs/new.jwt").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_another_name_or_not_writable_is_replaced_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("store/O")).unwrap();
        fs::write(base.join("other"), b"keep").unwrap();
        fs::hard_link(base.join("other"), base.join("store/O/O.jwt")).unwrap();
        assert!(overwrite_in_place(&base.join("store/O/O.jwt"), b"x", STORE_MODE).is_err());
        fs::write(base.join("store/O/ro.jwt"), b"read-only").unwrap();
        fs::set_permissions(
            base.join("store/O/ro.jwt"),
            fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        write(
            base,
            &[
                ("store/O/O.jwt".into(), b"new"),
                ("store/O/ro.jwt".into(), b"new-ro"),
            ],
        )
        .unwrap();
        assert_eq!(finish(base).unwrap(), Finished::Rewritten(2));
        assert_eq!(fs::read(base.join("store/O/O.jwt")).unwrap(), b"new");
        assert_eq!(fs::read(base.join("other")).unwrap(), b"keep");
        assert_eq!(fs::read(base.join("store/O/ro.jwt")).unwrap(), b"new-ro");
    }
}
