//! Where natsform reads a project from: the working directory, or a git
//! tree at a revision (`plan --base REF`). Every reader of the manifest,
//! the lock, the store and the vault goes through [`Source`], so the rules
//! of the house hold for both the same way: a link (or a git submodule) is
//! never followed, names are checked by the same code, and the same size
//! limits apply.
//!
//! Paths are in the source's own namespace: file system paths for
//! [`WorkDir`], paths relative to the repository root for
//! [`git::GitTree`]. [`Source::shown`] says how a message names one.

pub mod git;

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What a directory entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link (on disk, or a git entry of mode 120000).
    Symlink,
    /// A git submodule (a commit entry, mode 160000): a link to another
    /// repository, refused like a symbolic link.
    Submodule,
    /// Anything else (a socket, a device, a FIFO).
    Other,
}

impl Kind {
    /// Whether natsform refuses to go through this entry.
    pub fn is_link(self) -> bool {
        matches!(self, Kind::Symlink | Kind::Submodule)
    }
}

/// The largest `natsform.lock` natsform reads (64 MiB; 100,000 users make
/// about 9 MiB).
pub const MAX_LOCK_BYTES: u64 = 64 * 1024 * 1024;
/// The largest JWT file natsform reads from the store (64 MiB: an account
/// JWT revoking 100,000 users is about 10 MiB).
pub const MAX_JWT_BYTES: u64 = 64 * 1024 * 1024;
/// The largest `.nsc` marker natsform reads (nsc writes about 70 bytes).
pub const MAX_MARKER_BYTES: u64 = 64 * 1024;
/// The largest seed file `plan` inspects (an armoured seed for a few
/// recipients is about 1 KiB).
pub const MAX_SEED_FILE_BYTES: u64 = 1024 * 1024;

/// Read access to a project's files.
pub trait Source: Sync {
    /// What is at `path`, without following a link there; `None` when
    /// nothing is.
    fn kind(&self, path: &Path) -> io::Result<Option<Kind>>;

    /// The bytes of the regular file at `path`; `None` when nothing is
    /// there. A link there is not followed (an error), nor is anything
    /// that is not a regular file read; a file over `limit` bytes is an
    /// error of kind [`io::ErrorKind::FileTooLarge`]. Errors do not name
    /// `path` unless they refuse it: callers add their context.
    fn read(&self, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>>;

    /// The entries of the directory `dir` (name, kind), in no particular
    /// order; none when `dir` does not exist. `dir` itself must not be a
    /// link (refused, naming it).
    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>>;

    /// How messages name `path`.
    fn shown(&self, path: &Path) -> PathBuf;

    /// The manifest the command line named: like [`Source::read`], except
    /// that the working directory follows a link there (the user chose the
    /// path), and that a missing file is an error.
    fn read_named(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        self.read(path, limit)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// The working directory itself, when this source is it: readers of
    /// many files in one directory (the store's users) open them relative
    /// to that directory ([`WorkDir::open_dir`]).
    fn work_dir(&self) -> Option<&WorkDir> {
        None
    }
}

/// The error for reading a directory as a file (the OS's words where
/// there is one).
pub fn is_a_directory() -> io::Error {
    #[cfg(unix)]
    return io::Error::from_raw_os_error(libc::EISDIR);
    #[cfg(not(unix))]
    return io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
}

/// The error for a file over a size limit.
pub fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "the file is larger than {}, the most natsform reads here",
            human_size(limit)
        ),
    )
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// The error for a link (or submodule) met at `shown`.
pub fn refused(shown: &Path, kind: Kind) -> io::Error {
    match kind {
        Kind::Submodule => io::Error::other(format!(
            "{} is a git submodule; natsform does not follow links inside the project\n  \
             = help: replace the submodule by the directory or file itself (links could make \
             natsform read, write or delete files outside the project)",
            shown.display()
        )),
        _ => crate::safepath::link_error(shown),
    }
}

/// The working directory: paths are file system paths.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkDir;

fn kind_of(t: std::fs::FileType) -> Kind {
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

impl Source for WorkDir {
    fn kind(&self, path: &Path) -> io::Result<Option<Kind>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(kind_of(m.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", path.display()),
            )),
        }
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        // One open that refuses a link (O_NOFOLLOW) and never blocks on a
        // FIFO (O_NONBLOCK, which regular files ignore): as cheap as
        // `fs::read`, which the 100,000-file store depends on.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        #[cfg(not(unix))]
        if crate::safepath::is_link(path) {
            return Err(crate::safepath::link_error(path));
        }
        let file = match options.open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // ELOOP from O_NOFOLLOW.
            Err(_) if crate::safepath::is_link(path) => {
                return Err(crate::safepath::link_error(path))
            }
            Err(e) => return Err(e),
        };
        let md = file.metadata()?;
        if md.is_dir() {
            return Err(is_a_directory());
        }
        if !md.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        read_capped(file, md.len(), limit).map(Some)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        crate::safepath::check_not_link(dir)?;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", dir.display()),
                ))
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            // The entry's own type (no `stat` per file): a link is seen as
            // a link, never as what it points to.
            out.push((entry.file_name(), kind_of(entry.file_type()?)));
        }
        Ok(out)
    }

    fn shown(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }

    fn work_dir(&self) -> Option<&WorkDir> {
        Some(self)
    }

    fn read_named(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        // Followed: the command line named this path. A regular file's
        // size is known without reading it; anything else (a pipe, a
        // device) is read up to one byte past the limit.
        let file = std::fs::File::open(path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        read_capped(file, len, limit)
    }
}

impl WorkDir {
    /// The directory `dir`, opened once (never through a link there) so
    /// that files in it are opened by name relative to it, without a walk
    /// of the whole path per file; `None` when nothing is there.
    pub fn open_dir(&self, dir: &Path) -> io::Result<Option<OpenDir>> {
        OpenDir::open(dir)
    }
}

/// A directory of the working directory, opened ([`WorkDir::open_dir`]).
#[derive(Debug)]
pub struct OpenDir {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

impl OpenDir {
    #[cfg(unix)]
    fn open(dir: &Path) -> io::Result<Option<OpenDir>> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: a valid NUL-terminated path; the descriptor returned is
        // owned by the `OwnedFd` below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::NotFound => Ok(None),
                _ if crate::safepath::is_link(dir) => Err(crate::safepath::link_error(dir)),
                _ => Err(io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", dir.display()),
                )),
            };
        }
        Ok(Some(OpenDir {
            path: dir.to_path_buf(),
            // SAFETY: `fd` was just opened and is owned by nothing else.
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
        }))
    }

    #[cfg(not(unix))]
    fn open(dir: &Path) -> io::Result<Option<OpenDir>> {
        crate::safepath::check_not_link(dir)?;
        Ok(dir.is_dir().then(|| OpenDir {
            path: dir.to_path_buf(),
        }))
    }

    /// [`Source::read`] of the file `name` in this directory, into `buf`
    /// (its bytes replaced); `false` when nothing is there. The same
    /// refusals with the same errors, in one open, one `fstat` and, for a
    /// file whose size is what `fstat` said, one `read`.
    pub fn read_into(
        &self,
        name: &std::ffi::OsStr,
        limit: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<bool> {
        buf.clear();
        let Some(mut file) = self.open_file(name)? else {
            return Ok(false);
        };
        let md = file.metadata()?;
        if md.is_dir() {
            return Err(is_a_directory());
        }
        if !md.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        if md.len() > limit {
            return Err(too_large(limit));
        }
        // One byte more than the size, so that a file read whole in one
        // call is known to be whole (a regular file reads short only at its
        // end); a file that grew before the read fills the buffer and is
        // read on to its end, still under the limit. One that grows after
        // this read is read as it was (a race with another writer, which
        // the run lock does not cover: the JWT then fails its checks).
        let want = md.len() as usize + 1;
        buf.resize(want, 0);
        let mut got = 0;
        loop {
            let n = match file.read(&mut buf[got..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.clear();
                    return Err(e);
                }
            };
            got += n;
            if n == 0 || got as u64 == md.len() {
                break;
            }
            if got == buf.len() {
                if got as u64 > limit {
                    buf.clear();
                    return Err(too_large(limit));
                }
                let more = (buf.len() * 2).min(limit as usize + 1).max(buf.len() + 1);
                buf.resize(more, 0);
            }
        }
        buf.truncate(got);
        if got as u64 > limit {
            buf.clear();
            return Err(too_large(limit));
        }
        Ok(true)
    }

    #[cfg(unix)]
    fn open_file(&self, name: &std::ffi::OsStr) -> io::Result<Option<std::fs::File>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(name.as_bytes())?;
        // One open that refuses a link (O_NOFOLLOW) and never blocks on a
        // FIFO (O_NONBLOCK), as [`WorkDir`]'s `read`.
        // SAFETY: a valid directory descriptor and NUL-terminated name; the
        // descriptor returned is owned by the `File` below.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            let path = self.path.join(name);
            return match e.kind() {
                io::ErrorKind::NotFound => Ok(None),
                // ELOOP from O_NOFOLLOW.
                _ if crate::safepath::is_link(&path) => Err(crate::safepath::link_error(&path)),
                _ => Err(e),
            };
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(Some(unsafe { std::fs::File::from_raw_fd(fd) }))
    }

    #[cfg(not(unix))]
    fn open_file(&self, name: &std::ffi::OsStr) -> io::Result<Option<std::fs::File>> {
        let path = self.path.join(name);
        if crate::safepath::is_link(&path) {
            return Err(crate::safepath::link_error(&path));
        }
        match std::fs::File::open(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Reads `file` (whose size claims to be `len`) when it holds at most
/// `limit` bytes, reading at most one byte more than the limit.
fn read_capped(file: std::fs::File, len: u64, limit: u64) -> io::Result<Vec<u8>> {
    if len > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_working_directory_refuses_links_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "12345").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
        let src = WorkDir;
        assert_eq!(src.read(&d.join("a"), 5).unwrap().unwrap(), b"12345");
        let e = src.read(&d.join("a"), 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        assert!(src.read(&d.join("missing"), 5).unwrap().is_none());
        let e = src.read(&d.join("link"), 5).unwrap_err().to_string();
        assert!(e.contains("link is a symbolic link"), "{e}");
        assert!(src.read(&d.join("sub"), 5).is_err());
        assert_eq!(src.kind(&d.join("link")).unwrap(), Some(Kind::Symlink));
        assert_eq!(src.kind(&d.join("sub")).unwrap(), Some(Kind::Dir));
        assert_eq!(src.kind(&d.join("none")).unwrap(), None);
        let mut entries = src.list(d).unwrap();
        entries.sort();
        assert_eq!(
            entries,
            [
                ("a".into(), Kind::File),
                ("link".into(), Kind::Symlink),
                ("sub".into(), Kind::Dir)
            ]
        );
        assert!(src.list(&d.join("none")).unwrap().is_empty());
        std::os::unix::fs::symlink(d.join("sub"), d.join("dirlink")).unwrap();
        assert!(src.list(&d.join("dirlink")).is_err());
        // The manifest named on the command line is followed.
        assert_eq!(src.read_named(&d.join("link"), 5).unwrap(), b"12345");
        assert!(src.read_named(&d.join("link"), 4).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_read_and_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.jwt");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = WorkDir.read(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn an_open_directory_reads_and_refuses_as_read_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), "12345").unwrap();
        std::fs::write(d.join("empty"), "").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("link")).unwrap();
        let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let open = WorkDir.open_dir(d).unwrap().unwrap();
        let mut buf = b"old".to_vec();
        assert!(open.read_into("a".as_ref(), 5, &mut buf).unwrap());
        assert_eq!(buf, b"12345");
        assert!(open.read_into("empty".as_ref(), 5, &mut buf).unwrap());
        assert!(buf.is_empty());
        assert!(!open.read_into("missing".as_ref(), 5, &mut buf).unwrap());
        let e = open.read_into("a".as_ref(), 4, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        for (name, limit) in [("link", 5), ("sub", 5), ("fifo", 5)] {
            let by_path = WorkDir.read(&d.join(name), limit).unwrap_err().to_string();
            let e = open.read_into(name.as_ref(), limit, &mut buf).unwrap_err();
            assert_eq!(e.to_string(), by_path, "{name}");
        }
        assert!(WorkDir.open_dir(&d.join("none")).unwrap().is_none());
        std::os::unix::fs::symlink(d.join("sub"), d.join("dirlink")).unwrap();
        let e = WorkDir
            .open_dir(&d.join("dirlink"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dirlink is a symbolic link"), "{e}");
    }
}
