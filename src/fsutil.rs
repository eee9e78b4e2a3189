//! File-system helpers shared by every writer: atomic, churn-free writes, and
//! the sweep of temporary files an interrupted write left behind.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Temporary files [`write_atomic`] makes: `.natsform-<random>.tmp`.
pub const TEMP_PREFIX: &str = ".natsform-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename) with the given Unix mode, creating parent directories
/// (mode 0700) as needed.
///
/// Returns `Ok(false)` without touching the file when it already holds
/// exactly `bytes`, so unchanged files keep their mtime and git sees no churn.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<bool> {
    if let Ok(existing) = fs::read(path) {
        if existing == bytes {
            return Ok(false);
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_dir_all_private(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    set_mode(tmp.as_file(), mode)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(true)
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_dir_all_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Whether `name` is one of [`write_atomic`]'s temporary files: exactly
/// `.natsform-` + 1 to 32 ASCII letters or digits + `.tmp`.
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|mid| {
            (1..=32).contains(&mid.len()) && mid.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Removes temporary files left by an interrupted [`write_atomic`] in `dir`
/// and, `depth` levels down, in its subdirectories. Only regular files whose
/// name is exactly ours ([`is_temp_name`]) go; symbolic links are neither
/// followed nor removed, and a `dir` that is itself a symbolic link or does
/// not exist is left alone. Returns what was removed; the caller must hold
/// the lock that keeps other natsform runs from writing there.
pub fn remove_stale_temp_files(
    dir: &Path,
    depth: usize,
) -> Vec<std::io::Result<std::path::PathBuf>> {
    let mut done = Vec::new();
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => sweep(dir, depth, &mut done),
        _ => {}
    }
    done
}

fn sweep(dir: &Path, depth: usize, done: &mut Vec<std::io::Result<std::path::PathBuf>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // `file_type` does not follow symbolic links.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_file() && is_temp_name(&entry.file_name()) {
            done.push(fs::remove_file(&path).map(|()| path));
        } else if kind.is_dir() && depth > 0 {
            sweep(&path, depth - 1, done);
        }
    }
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Makes the rename durable; failure only weakens durability, so it is ignored.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_content_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/file.txt");
        assert!(write_atomic(&p, b"hello", 0o600).unwrap());
        let before = fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!write_atomic(&p, b"hello", 0o600).unwrap());
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), before);
        assert!(write_atomic(&p, b"world", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"world");
    }

    #[test]
    fn temp_names_are_exactly_ours() {
        for yes in [
            ".natsform-abc123.tmp",
            ".natsform-XXXX.tmp",
            ".natsform-a.tmp",
        ] {
            assert!(is_temp_name(yes.as_ref()), "{yes}");
        }
        for no in [
            "notes.tmp",
            ".natsform-foo",
            ".natsform-.tmp",
            ".natsform-a/b.tmp",
            ".natsform-a.b.tmp",
            "natsform-abc.tmp",
            ".natsform.run-lock",
            ".natsform-abc.tmp.bak",
            "x.natsform-abc.tmp",
        ] {
            assert!(!is_temp_name(no.as_ref()), "{no}");
        }
        // What write_atomic makes matches.
        let t = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile()
            .unwrap();
        assert!(is_temp_name(t.path().file_name().unwrap()));
    }

    #[test]
    fn the_sweep_removes_only_our_temp_files_to_the_given_depth() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for p in ["a/b", "a/b/c"] {
            fs::create_dir_all(d.join(p)).unwrap();
        }
        for p in [
            ".natsform-1.tmp",
            "a/.natsform-2.tmp",
            "a/b/.natsform-3.tmp",
        ] {
            fs::write(d.join(p), "SUAxxx").unwrap();
        }
        let kept = [
            "notes.tmp",
            ".natsform-foo",
            "a/b/c/.natsform-4.tmp",
            "a/keep.jwt",
        ];
        for p in kept {
            fs::write(d.join(p), "x").unwrap();
        }
        fs::create_dir(d.join(".natsform-dir.tmp")).unwrap();
        let removed: Vec<_> = remove_stale_temp_files(d, 2)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(removed.len(), 3, "{removed:?}");
        for p in kept {
            assert!(d.join(p).exists(), "{p}");
        }
        assert!(d.join(".natsform-dir.tmp").is_dir());
        assert!(remove_stale_temp_files(&d.join("missing"), 2).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_sweep_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join(".natsform-abc.tmp");
        fs::write(&victim, "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".natsform-lnk.tmp")).unwrap();
        assert!(remove_stale_temp_files(dir.path(), 3).is_empty());
        assert!(remove_stale_temp_files(&dir.path().join("sub"), 3).is_empty());
        assert!(victim.exists());
        assert!(fs::symlink_metadata(dir.path().join(".natsform-lnk.tmp")).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn files_get_the_requested_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic(&p, b"x", 0o600).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
