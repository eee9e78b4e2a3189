//! The rules every file natsform keeps in the user's cache directory obeys
//! (the verified signatures, the checked bundles, the parsed manifests):
//! where the cache root is, and reading and writing one file there.
//!
//! A cache file is read without following a link, only when it and its
//! directories belong to this user and nobody else can write them, and
//! under a size limit; anything else is "no cache" with the reason, never
//! an error. It is written atomically, mode 0600, in 0700 directories.

use std::io::Read;
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME` when absolute, else `$HOME/.cache` when `HOME` is
/// absolute, else none.
pub(crate) fn root_from_env() -> Option<PathBuf> {
    root(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

pub(crate) fn root(
    xdg: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg).or_else(|| absolute(home).map(|h| h.join(".cache")))
}

/// `<root>/natsform/<kind>/<SHA-256 of path's bytes, hex>`: one file per
/// project or manifest (`path` canonical), for each kind of cache.
pub(crate) fn file_for(root: &Path, kind: &str, path: &Path) -> PathBuf {
    use sha2::Digest as _;
    use std::os::unix::ffi::OsStrExt;
    let name = crate::verified::hex(&sha2::Sha256::digest(path.as_os_str().as_bytes()));
    root.join("natsform").join(kind).join(name)
}

/// The directories between the cache root and a [`file_for`] file:
/// `…/natsform` and `…/natsform/<kind>`; both checked on every read.
fn dirs_of(file: &Path) -> [&Path; 2] {
    let kind = file.parent().expect("a file in a directory");
    [kind.parent().expect("under natsform/"), kind]
}

/// Why a cache file gives nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not there (nor its directories): nothing to say.
    Absent,
    /// There but not to be trusted or read; the reason, for a note.
    Ignored(String),
}

/// The bytes of the [`file_for`] file `file`, at most `limit` of them.
pub(crate) fn read(file: &Path, limit: u64) -> Result<Vec<u8>, Unusable> {
    let (opened, len) = open_checked(file)?;
    read_rest(opened, len, limit)
}

/// The first `n` bytes of `file` (fewer when it is shorter), under the
/// rules of [`read`]; with the file still open after them, for [`read_rest`].
pub(crate) fn read_head(file: &Path, n: usize) -> Result<(Vec<u8>, std::fs::File, u64), Unusable> {
    let (mut opened, len) = open_checked(file)?;
    let mut head = vec![0; n.min(len as usize)];
    opened
        .read_exact(&mut head)
        .map_err(|e| Unusable::Ignored(format!("cannot read it: {e}")))?;
    Ok((head, opened, len))
}

/// What is left to read of a file `len` bytes long, at most `limit`
/// bytes in all.
pub(crate) fn read_rest(opened: std::fs::File, len: u64, limit: u64) -> Result<Vec<u8>, Unusable> {
    if len > limit {
        return Err(Unusable::Ignored(format!(
            "{len} bytes, more than the {limit} a cache may hold"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    opened
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Unusable::Ignored(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Unusable::Ignored(format!(
            "more than the {limit} bytes a cache may hold"
        )));
    }
    Ok(bytes)
}

/// `file` opened for reading, and its length, when it and its
/// directories under the cache root are this user's own, no link, and
/// nobody else can write them.
fn open_checked(file: &Path) -> Result<(std::fs::File, u64), Unusable> {
    for dir in dirs_of(file) {
        match std::fs::symlink_metadata(dir) {
            Err(_) => return Err(Unusable::Absent),
            Ok(m) => check_private(&m, "directory")?,
        }
    }
    let opened = match open_nofollow(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Absent),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Unusable::Ignored("it is a symbolic link".into()))
        }
        Err(e) => return Err(Unusable::Ignored(format!("cannot open it: {e}"))),
    };
    let meta = opened
        .metadata()
        .map_err(|e| Unusable::Ignored(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(Unusable::Ignored("it is not a regular file".into()));
    }
    check_private(&meta, "file")?;
    Ok((opened, meta.len()))
}

/// Writes `bytes` to the [`file_for`] file `file`, creating the
/// directories under the cache root 0700 where missing; existing ones must
/// be this user's own real directories that nobody else can write.
/// `Ok(false)` when the file holds exactly these bytes already (not
/// written: `fsutil::write_atomic` compares).
pub(crate) fn write(file: &Path, bytes: &[u8]) -> Result<bool, String> {
    let dirs = dirs_of(file);
    let root = dirs[0].parent().expect("a cache root");
    match std::fs::symlink_metadata(root) {
        Ok(m) if !m.is_dir() && !m.file_type().is_symlink() => {
            return Err(format!("{} is not a directory", esc(root)));
        }
        _ => {}
    }
    for dir in dirs {
        match std::fs::symlink_metadata(dir) {
            Ok(m) => check_private(&m, "directory").map_err(|u| match u {
                Unusable::Ignored(why) => format!("{}: {why}", esc(dir)),
                Unusable::Absent => unreachable!("only Ignored is returned"),
            })?,
            Err(_) => crate::fsutil::create_dir_all_private(dir)
                .map_err(|e| format!("creating {}: {e}", esc(dir)))?,
        }
    }
    // Whatever else is in the file's place (a link, a pipe, garbage, a
    // huge file) is replaced by the rename, never followed or read
    // (`write_atomic` reads only a regular file of the same size). A
    // directory is left alone.
    if std::fs::symlink_metadata(file).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{} is a directory", esc(file)));
    }
    crate::fsutil::write_atomic(file, bytes, 0o600).map_err(|e| format!("{}: {e}", esc(file)))
}

/// Removes `file` (a link in its place is removed, never followed; a
/// directory is left alone). `Ok(true)` when one was there.
pub(crate) fn forget(file: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", esc(file))),
        Ok(m) if m.is_dir() => Err(format!("{} is a directory", esc(file))),
        Ok(_) => std::fs::remove_file(file)
            .map(|()| true)
            .map_err(|e| format!("{}: {e}", esc(file))),
    }
}

/// This user's, not a link, writable by nobody else.
fn check_private(m: &std::fs::Metadata, what: &str) -> Result<(), Unusable> {
    use std::os::unix::fs::MetadataExt;
    if m.file_type().is_symlink() {
        return Err(Unusable::Ignored(format!(
            "a {what} on its path is a symbolic link"
        )));
    }
    // SAFETY: geteuid cannot fail and has no preconditions.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(Unusable::Ignored(format!(
            "a {what} on its path belongs to another user"
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(Unusable::Ignored(format!(
            "a {what} on its path can be written by others"
        )));
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// A path as a message shows it (control characters escaped).
pub(crate) fn esc(path: &Path) -> String {
    crate::safepath::escape_line(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_xdg_then_home_and_only_absolute() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        assert_eq!(root(s("/x"), s("/h")), Some(PathBuf::from("/x")));
        assert_eq!(root(s("rel"), s("/h")), Some(PathBuf::from("/h/.cache")));
        assert_eq!(root(None, s("/h")), Some(PathBuf::from("/h/.cache")));
        assert_eq!(root(s(""), s("rel")), None);
        assert_eq!(root(None, None), None);
    }
}
