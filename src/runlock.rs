//! One natsform run at a time per project: an OS file lock next to the manifest.
//!
//! `apply` (and `creds --out`, which writes seeds to disk) hold the lock
//! exclusively from before the workspace is read until the last write;
//! `plan`, `show` and `creds` hold it shared, so they never read a half-written
//! apply. The lock is `flock(2)` on Unix (std's `File::lock`), so the
//! operating system releases it when the process exits, crashes or is killed.
//!
//! The lock file, [`LOCK_FILE_NAME`] in the manifest's directory, exists only
//! while a run holds it: the last holder removes it. Removing a lock file
//! safely needs one rule, kept here: whoever takes the lock checks that the
//! path still names the file it locked (same device and inode), and starts
//! over if not; a file is removed only by a run that holds it exclusively.
//! After a crash the empty file stays until the next run removes it; it is
//! harmless, and `.gitignore` should list it.
//!
//! The file may have been planted by a hostile branch: it is opened with
//! `O_NOFOLLOW` (a symbolic link is refused, never followed), must be a
//! regular file, and nothing is ever written to it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file's name, next to the manifest.
pub const LOCK_FILE_NAME: &str = ".natsform.run-lock";

/// How often a waiting run retries.
const POLL: Duration = Duration::from_millis(100);

/// Shared for readers, exclusive for writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `plan`, `show`, `creds`: many at once, never during an apply.
    Shared,
    /// `apply`, `creds --out`: alone.
    Exclusive,
}

/// Who holds the lock we could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An exclusive holder: an apply (or `creds --out`).
    Writer { pids: Vec<u32> },
    /// Shared holders: plan, show or creds.
    Readers { pids: Vec<u32> },
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", busy_message(dir, *mode, holder, *waited))]
    Busy {
        dir: PathBuf,
        mode: Mode,
        holder: Holder,
        waited: Duration,
    },
    #[error("refusing the lock file {}: it is a symbolic link, and natsform never follows one there\n  = help: it is not natsform's; remove it (natsform creates a plain empty file there while it runs)", path.display())]
    Symlink { path: PathBuf },
    #[error("refusing the lock file {}: it is not a regular file\n  = help: remove it (natsform creates a plain empty file there while it runs)", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot open the lock file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn busy_message(dir: &Path, mode: Mode, holder: &Holder, waited: Duration) -> String {
    let dir = dir.display();
    let pids = |p: &[u32]| match p {
        [] => String::new(),
        [one] => format!(" (pid {one})"),
        many => format!(
            " (pids {})",
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let who = match holder {
        Holder::Writer { pids: p } => {
            format!("another natsform apply holds the lock on {dir}{}", pids(p))
        }
        Holder::Readers { pids: p } => {
            format!("a natsform plan, show or creds is reading {dir}{}", pids(p))
        }
    };
    let waited = if waited.is_zero() {
        String::new()
    } else {
        format!(" after waiting {}", human(waited))
    };
    let outcome = match mode {
        Mode::Exclusive => "; nothing was changed",
        Mode::Shared => " and its changes are not complete",
    };
    let help = if waited.is_empty() {
        "retry when it has finished, or pass --lock-timeout 30s to wait for it"
    } else {
        "retry when it has finished, or wait longer with a larger --lock-timeout"
    };
    format!("{who}{waited}{outcome}\n  = help: {help}")
}

/// `1m30s`, `500ms`: how long we waited, as the flag is written.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// A held lock; dropping it releases it (and removes the file when no one
/// else holds it).
#[derive(Debug)]
pub struct RunLock {
    /// `None` when the directory cannot hold a lock file (read-only, or
    /// missing) and a shared lock was asked for: nothing can write there.
    file: Option<File>,
    path: PathBuf,
    mode: Mode,
}

impl RunLock {
    /// Whether an OS lock is actually held (false only for a shared lock on
    /// a directory where no lock file can be created).
    #[cfg(test)]
    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        // Remove the file only while holding it exclusively: a shared holder
        // first tries to become the only one (never waiting).
        let alone = self.mode == Mode::Exclusive || file.try_lock().is_ok();
        if alone && names_this_file(&self.path, &file) {
            let _ = fs::remove_file(&self.path);
        }
        drop(file);
    }
}

/// The project directory of a manifest path: where the lock file lives.
pub fn project_dir(manifest: &Path) -> PathBuf {
    match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Takes the lock on `dir` in `mode`, waiting up to `timeout` (zero: fail at
/// once). `on_wait` is called once, with a note, when the run starts waiting.
pub fn acquire(
    dir: &Path,
    mode: Mode,
    timeout: Duration,
    on_wait: &mut dyn FnMut(&str),
) -> Result<RunLock, LockError> {
    let path = dir.join(LOCK_FILE_NAME);
    let start = Instant::now();
    let mut told = false;
    loop {
        let file = match open(&path) {
            Ok(f) => f,
            Err(e) => {
                let kind = e.kind();
                let readonly = matches!(
                    kind,
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                );
                // No project directory: the manifest cannot load either, and
                // its error says so better. A read-only checkout: nothing can
                // apply there, so a reader needs no lock.
                if kind == io::ErrorKind::NotFound || (readonly && mode == Mode::Shared) {
                    return Ok(RunLock {
                        file: None,
                        path,
                        mode,
                    });
                }
                return Err(classify(&path, e));
            }
        };
        let taken = match mode {
            Mode::Exclusive => file.try_lock(),
            Mode::Shared => file.try_lock_shared(),
        };
        match taken {
            Ok(()) => {
                if names_this_file(&path, &file) {
                    return Ok(RunLock {
                        file: Some(file),
                        path,
                        mode,
                    });
                }
                // The previous holder removed the file after we opened it:
                // start over with the one the path names now.
                continue;
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
            Err(TryLockError::WouldBlock) => {}
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(LockError::Busy {
                dir: dir.to_path_buf(),
                mode,
                holder: holder(&file, mode),
                waited: timeout,
            });
        }
        if !told {
            told = true;
            let note = match holder(&file, mode) {
                Holder::Writer { .. } => "another natsform apply is running",
                Holder::Readers { .. } => "a natsform plan, show or creds is reading",
            };
            on_wait(&format!(
                "Waiting up to {} for the lock on {} ({note})…",
                human(timeout),
                dir.display()
            ));
        }
        drop(file);
        std::thread::sleep(POLL.min(timeout - waited));
    }
}

/// Opens (creating, mode 0600) the lock file without following a symlink.
fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    // Read and write: `flock` emulated over NFS needs a writable descriptor
    // for an exclusive lock. Nothing is ever written.
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other("the lock file is a symbolic link"));
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_A_FILE));
    }
    Ok(file)
}

const NOT_A_FILE: &str = "not a regular file";

fn classify(path: &Path, e: io::Error) -> LockError {
    let path = path.to_path_buf();
    let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return LockError::Symlink { path };
    }
    let planted_non_file = e.kind() == io::ErrorKind::InvalidInput && e.to_string() == NOT_A_FILE;
    if planted_non_file || fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        return LockError::NotAFile { path };
    }
    LockError::Io { path, source: e }
}

/// Whether `path` (not following a symlink) is the very file `file` is.
fn names_this_file(path: &Path, file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::symlink_metadata(path), file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
    }
}

/// Who holds the lock: a shared lock we can take means only readers hold it.
fn holder(file: &File, wanted: Mode) -> Holder {
    let pids = holder_pids(file);
    if wanted == Mode::Exclusive && file.try_lock_shared().is_ok() {
        let _ = file.unlock();
        return Holder::Readers { pids };
    }
    Holder::Writer { pids }
}

/// The processes holding a lock on `file`, from `/proc/locks` (Linux; best
/// effort: empty elsewhere or when unreadable).
fn holder_pids(file: &File) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = file.metadata() else {
            return Vec::new();
        };
        let Ok(text) = fs::read_to_string("/proc/locks") else {
            return Vec::new();
        };
        let dev = meta.dev();
        let want = format!(
            "{:02x}:{:02x}:{}",
            libc::major(dev),
            libc::minor(dev),
            meta.ino()
        );
        let own = std::process::id();
        let mut pids: Vec<u32> = text
            .lines()
            // `N: -> FLOCK ...` lines are waiters, not holders.
            .filter(|l| !l.contains("->"))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END
                (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
                    .then(|| f.get(4).and_then(|p| p.parse().ok()))
                    .flatten()
            })
            .filter(|&p| p != own)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_wait(_: &str) {}

    #[test]
    fn exclusive_excludes_everyone_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap();
        assert!(held.is_held());
        assert!(dir.path().join(LOCK_FILE_NAME).is_file());
        for mode in [Mode::Exclusive, Mode::Shared] {
            let err = acquire(dir.path(), mode, Duration::ZERO, &mut no_wait).unwrap_err();
            assert!(
                matches!(
                    err,
                    LockError::Busy {
                        holder: Holder::Writer { .. },
                        ..
                    }
                ),
                "{err}"
            );
        }
        drop(held);
        assert!(!dir.path().join(LOCK_FILE_NAME).exists());
        acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap();
    }

    #[test]
    fn readers_share_and_keep_out_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), Mode::Shared, Duration::ZERO, &mut no_wait).unwrap();
        let b = acquire(dir.path(), Mode::Shared, Duration::ZERO, &mut no_wait).unwrap();
        let err = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap_err();
        assert!(
            matches!(
                err,
                LockError::Busy {
                    holder: Holder::Readers { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("plan, show or creds"), "{err}");
        // The first reader to leave must not remove the file under the other.
        drop(a);
        assert!(dir.path().join(LOCK_FILE_NAME).exists());
        assert!(acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).is_err());
        drop(b);
        assert!(!dir.path().join(LOCK_FILE_NAME).exists());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap();
        let d = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let mut notes = Vec::new();
            let got = acquire(&d, Mode::Exclusive, Duration::from_secs(20), &mut |n| {
                notes.push(n.to_string())
            });
            (got.map(|l| l.is_held()).unwrap(), notes)
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
        let (held, notes) = waiter.join().unwrap();
        assert!(held);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("Waiting up to 20s"), "{notes:?}");
    }

    #[test]
    fn the_timeout_is_honoured_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let _held = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap();
        let start = Instant::now();
        let err = acquire(
            dir.path(),
            Mode::Exclusive,
            Duration::from_millis(400),
            &mut no_wait,
        )
        .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(400));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("after waiting 400ms"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        fs::write(&target, b"keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK_FILE_NAME)).unwrap();
        let err = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap_err();
        assert!(matches!(err, LockError::Symlink { .. }), "{err}");
        // A dangling link is not followed to create its target either.
        let missing = outside.path().join("created");
        fs::remove_file(dir.path().join(LOCK_FILE_NAME)).unwrap();
        std::os::unix::fs::symlink(&missing, dir.path().join(LOCK_FILE_NAME)).unwrap();
        assert!(acquire(dir.path(), Mode::Shared, Duration::ZERO, &mut no_wait).is_err());
        assert!(!missing.exists());
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn a_directory_in_its_place_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(LOCK_FILE_NAME)).unwrap();
        let err = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap_err();
        assert!(matches!(err, LockError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn a_stale_file_from_a_crash_is_reused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOCK_FILE_NAME), b"").unwrap();
        drop(acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap());
        assert!(!dir.path().join(LOCK_FILE_NAME).exists());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_holder_pid_is_named() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        // Our own pid is filtered out, so hold the lock from a child process
        // (util-linux flock(1)); it says `ready` once it holds the lock.
        let child = std::process::Command::new("flock")
            .arg(dir.path().join(LOCK_FILE_NAME))
            .args(["-c", "echo ready; sleep 30"])
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            return; // flock(1) not installed
        };
        let mut line = String::new();
        let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let err = acquire(dir.path(), Mode::Exclusive, Duration::ZERO, &mut no_wait).unwrap_err();
        let _ = child.kill();
        let _ = child.wait();
        let text = err.to_string();
        // flock(1) runs the command in a child shell that inherits the lock:
        // flock's own pid holds it.
        assert!(text.contains(&format!("pid {}", child.id())), "{text}");
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(Duration::from_secs(30)), "30s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }
}
