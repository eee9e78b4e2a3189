//! File-system helpers shared by every writer: atomic, churn-free writes
//! (one file: [`write_atomic`]; many, made durable together: [`Batch`]),
//! and the sweep of temporary files an interrupted write left behind.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

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
    // Never followed or read when it is not a regular file (a link, a pipe):
    // the rename below replaces whatever is there, not what it points at.
    if matches!(at_path(path, bytes), Ok(AtPath::File { same: true })) {
        return Ok(false);
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

/// Up to this many files (or directories), a batch fsyncs each one (in
/// parallel); above it, one `syncfs` per file system (Linux). Per-file
/// syncs of a few files cost less than flushing a whole file system that
/// others may be writing to; per-file syncs of thousands cost far more.
const PER_FILE_SYNC_LIMIT: usize = 64;

/// Writes and removals made durable together: git's
/// `core.fsyncMethod=batch`, for natsform's phases.
///
/// [`Batch::write`] stages a temporary file beside its target (not synced);
/// [`Batch::commit`] makes every staged file durable with a bounded number
/// of syncs, renames each over its target (in parallel when there are
/// many), performs the staged removals, then makes the directories durable. Until `commit`
/// returns, no target has changed unless a rename already happened: a crash
/// leaves each target either as it was or with its complete new bytes (and
/// temporary files, which [`remove_stale_temp_files`] sweeps). Dropping a
/// batch that was not committed removes its temporary files (and the
/// directories it created, when empty).
#[derive(Default)]
pub(crate) struct Batch {
    /// The fault-injection name of this batch's phase ([`fault`]).
    phase: Option<&'static str>,
    staged: Vec<Staged>,
    removals: Vec<Removal>,
    /// Directories this batch created, parents first.
    created: Vec<PathBuf>,
    /// The paths of staged [`Removal::Path`]s.
    removed: HashSet<PathBuf>,
    /// Directories known to exist (created or seen), so a phase of 100,000
    /// files does not `stat` the same directory 100,000 times.
    known_dirs: HashSet<PathBuf>,
    /// The project directory, when this batch may overwrite files in place
    /// behind a journal there ([`crate::journal`]).
    journal: Option<PathBuf>,
    /// Existing files (one name each) to overwrite: in place behind the
    /// journal when there are enough of them, else staged in `commit`.
    overwrites: Vec<Overwrite>,
}

struct Overwrite {
    target: PathBuf,
    bytes: Vec<u8>,
    mode: u32,
}

struct Staged {
    tmp: tempfile::TempPath,
    target: PathBuf,
    /// Kept open for small batches, which fsync each file.
    file: Option<fs::File>,
}

enum Removal {
    /// A file, or a directory with what it holds; never followed if a link.
    Path(PathBuf),
    /// A directory, removed only if empty.
    EmptyDir(PathBuf),
}

/// What [`Batch::commit`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    /// Files renamed over their targets.
    pub written: usize,
    /// Staged removals that removed something.
    pub removed: usize,
    /// fsync/syncfs calls made (data and directories).
    pub syncs: usize,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch for the apply phase `phase`, where the testing hook
    /// `NATSFORM_FAULT` ([`fault`]) may stop the process.
    pub fn for_phase(phase: &'static str) -> Batch {
        let mut batch = Batch::default();
        batch.phase = Some(phase);
        batch
    }

    /// Lets this batch overwrite existing files in place, behind a journal
    /// in the project directory `base` (which holds every target), when it
    /// has at least [`crate::journal::JOURNAL_FROM`] of them.
    pub fn journaled(mut self, base: &Path) -> Batch {
        self.journal = Some(base.to_path_buf());
        self
    }

    /// How many files are staged.
    #[cfg(test)]
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Stages `bytes` for `path` with Unix `mode`: returns `Ok(false)` and
    /// stages nothing when `path` already holds exactly `bytes`; otherwise
    /// writes a temporary `.natsform-<alnum>.tmp` file beside it (creating
    /// missing parent directories, mode 0700), not synced yet. A symbolic
    /// link, directory or other non-regular file at `path` is refused.
    pub fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
        let dir = parent_of(path);
        self.create_dirs(dir)?;
        let keep_open = self.staged.len() < PER_FILE_SYNC_LIMIT;
        match stage(path, dir, bytes, mode, keep_open, false)? {
            Some(s) => {
                self.staged.push(s);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`Batch::write`] for many files at once, their temporary files
    /// written in parallel; returns, per item, whether it was staged. The
    /// staging order is the order of `items`.
    pub fn write_many<B: AsRef<[u8]> + Sync>(
        &mut self,
        items: &[(PathBuf, B)],
        mode: u32,
    ) -> io::Result<Vec<bool>> {
        self.write_many_known(items, mode, &|_| false)
    }

    /// [`Batch::write_many`], where `differs(i)` says that the caller knows
    /// the file of item `i` does not hold its bytes now (it read the file
    /// earlier in this run, under the run lock, and the bytes differ): that
    /// file is then not read to compare, only looked at (a link, directory
    /// or other non-regular file is still refused). A wrong `true` can only
    /// rewrite a file with its own bytes; `false` always compares.
    pub fn write_many_known<B: AsRef<[u8]> + Sync>(
        &mut self,
        items: &[(PathBuf, B)],
        mode: u32,
        differs: &(dyn Fn(usize) -> bool + Sync),
    ) -> io::Result<Vec<bool>> {
        for (path, _) in items {
            self.create_dirs(parent_of(path))?;
        }
        let open_left = PER_FILE_SYNC_LIMIT.saturating_sub(self.staged.len());
        let journaled = self.journal.is_some();
        let staged: Vec<io::Result<Option<Pending>>> = items
            .par_iter()
            .enumerate()
            .map(|(i, (path, bytes))| {
                if journaled {
                    match overwrite_of(path, bytes.as_ref(), mode, differs(i))? {
                        Seen::Overwrite(o) => return Ok(Some(o)),
                        Seen::Same => return Ok(None),
                        // Just seen absent: no second look before staging.
                        Seen::Absent => {
                            let s = stage_new(
                                path,
                                parent_of(path),
                                bytes.as_ref(),
                                mode,
                                i < open_left,
                            )?;
                            return Ok(Some(Pending::Staged(s)));
                        }
                        Seen::Other => {}
                    }
                }
                let s = stage(
                    path,
                    parent_of(path),
                    bytes.as_ref(),
                    mode,
                    i < open_left,
                    differs(i),
                )?;
                Ok(s.map(Pending::Staged))
            })
            .collect();
        let mut changed = Vec::with_capacity(items.len());
        let mut first_error = None;
        for s in staged {
            match s {
                Ok(Some(Pending::Staged(s))) => {
                    self.staged.push(s);
                    changed.push(true);
                }
                Ok(Some(Pending::Overwrite(o))) => {
                    self.overwrites.push(o);
                    changed.push(true);
                }
                Ok(None) => changed.push(false),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    /// Stages the removal of `path` (a file, or a directory with its
    /// content; a symbolic link is removed, never followed), done in
    /// [`Batch::commit`] after the renames. Returns whether `path` exists
    /// now and is not inside a removal already staged.
    pub fn remove(&mut self, path: &Path) -> io::Result<bool> {
        if path.ancestors().any(|a| self.removed.contains(a)) {
            return Ok(false);
        }
        match fs::symlink_metadata(path) {
            Ok(_) => {
                self.removals.push(Removal::Path(path.to_path_buf()));
                self.removed.insert(path.to_path_buf());
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stages the removal of directory `dir` if it is empty by then (after
    /// the staged removals before it).
    pub fn remove_dir_if_empty(&mut self, dir: &Path) {
        self.removals.push(Removal::EmptyDir(dir.to_path_buf()));
    }

    /// Makes every staged file durable (up to [`PER_FILE_SYNC_LIMIT`]
    /// files: an fsync each, in parallel; more: one `syncfs` per file system
    /// on Linux, an fsync each elsewhere), renames each over its target
    /// (from [`PARALLEL_RENAMES_FROM`] files on, one directory's files in
    /// order and directories in parallel; else in staging order), performs the staged removals, then makes every
    /// touched directory durable the same way (a directory fsync each, or
    /// `syncfs`). Returns counts.
    pub fn commit(mut self) -> io::Result<Committed> {
        // Too few overwrites for a journal: each gets a temporary file.
        let mut overwrites = std::mem::take(&mut self.overwrites);
        // The journal's names, when every file has one and the journal is
        // not too large; else no journal (each file staged).
        let named: Option<Vec<String>> = match &self.journal {
            Some(base) if overwrites.len() >= crate::journal::JOURNAL_FROM => overwrites
                .iter()
                .map(|o| crate::journal::relative(base, &o.target))
                .collect(),
            _ => None,
        };
        let named = named.filter(|names| {
            let lengths = names.iter().zip(&overwrites);
            crate::journal::encoded_len(lengths.map(|(n, o)| (n.len(), o.bytes.len())))
                <= crate::journal::MAX_JOURNAL_BYTES
        });
        if named.is_none() {
            let open_left = PER_FILE_SYNC_LIMIT.saturating_sub(self.staged.len());
            let staged: Vec<io::Result<Option<Staged>>> = overwrites
                .par_iter()
                .enumerate()
                .map(|(i, o)| {
                    stage(
                        &o.target,
                        parent_of(&o.target),
                        &o.bytes,
                        o.mode,
                        i < open_left,
                        true,
                    )
                })
                .collect();
            for s in staged {
                self.staged.extend(s?);
            }
            overwrites.clear();
        }
        let staged = std::mem::take(&mut self.staged);
        let removals = std::mem::take(&mut self.removals);
        let created = std::mem::take(&mut self.created);
        let mut done = Committed::default();
        let total = staged.len() + overwrites.len() + removals.len();

        // 0. The journal of the files overwritten in place, durable before
        // the first of them changes (see `crate::journal`).
        let journal = self.journal.clone().filter(|_| !overwrites.is_empty());
        if let (Some(base), Some(names)) = (&journal, named) {
            let entries: Vec<(String, &[u8])> = names
                .into_iter()
                .zip(&overwrites)
                .map(|(n, o)| (n, o.bytes.as_slice()))
                .collect();
            crate::journal::write(base, &entries)?;
            done.syncs += 2;
        }

        // 1. The new bytes, durable before any target changes.
        if staged.iter().all(|s| s.file.is_some()) {
            let synced: io::Result<Vec<()>> = staged
                .par_iter()
                .filter_map(|s| s.file.as_ref())
                .map(fs::File::sync_all)
                .collect();
            synced?;
            done.syncs += staged.len();
        } else {
            let tmps: Vec<&Path> = staged.iter().map(|s| s.tmp.as_ref()).collect();
            done.syncs += sync_paths(&tmps)?;
        }

        fault::step(self.phase, 0, total);

        // 2. Renames, then removals. Any subset of a phase's renames may
        // survive a crash, so their order carries nothing: directories
        // are renamed into in parallel, each directory's files one after
        // the other (renames into one directory serialise on its lock,
        // and threads queueing for it cost more than they overlap:
        // 10,000 renames over files of one directory took 0.34-0.57 s
        // on one thread, 0.84-0.91 s on two), except when the testing
        // hook stops this phase after a given rename: then in staging
        // order, one by one.
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        for d in &created {
            touched.insert(parent_of(d).to_path_buf());
        }
        let mut step = 0;
        if fault::stops_in(self.phase) || staged.len() < PARALLEL_RENAMES_FROM {
            for s in staged {
                touched.insert(rename_staged(s)?);
                done.written += 1;
                step += 1;
                fault::step(self.phase, step, total);
            }
        } else {
            let mut by_dir: BTreeMap<PathBuf, Vec<Staged>> = BTreeMap::new();
            for s in staged {
                by_dir
                    .entry(parent_of(&s.target).to_path_buf())
                    .or_default()
                    .push(s);
            }
            let renamed: Vec<(PathBuf, usize, io::Result<()>)> = by_dir
                .into_par_iter()
                .map(|(dir, files)| {
                    let mut n = 0;
                    for s in files {
                        if let Err(e) = rename_staged(s) {
                            return (dir, n, Err(e));
                        }
                        n += 1;
                    }
                    (dir, n, Ok(()))
                })
                .collect();
            for (dir, n, r) in renamed {
                if n > 0 {
                    touched.insert(dir);
                }
                done.written += n;
                step += n;
                r?;
            }
        }
        // The overwrites, in place; a stop between two is finished by the
        // next apply from the journal.
        if fault::stops_in(self.phase) {
            for o in &overwrites {
                crate::journal::overwrite_in_place(&o.target, &o.bytes, o.mode)?;
                done.written += 1;
                step += 1;
                fault::step(self.phase, step, total);
            }
        } else {
            overwrites
                .par_iter()
                .map(|o| crate::journal::overwrite_in_place(&o.target, &o.bytes, o.mode))
                .collect::<io::Result<Vec<()>>>()?;
            done.written += overwrites.len();
            step += overwrites.len();
        }
        for r in removals {
            let removed = match &r {
                Removal::Path(p) => remove_path(p)?,
                Removal::EmptyDir(d) => fs::remove_dir(d).is_ok(),
            };
            if removed {
                let p = match &r {
                    Removal::Path(p) | Removal::EmptyDir(p) => p,
                };
                touched.insert(parent_of(p).to_path_buf());
                if matches!(r, Removal::Path(_)) {
                    done.removed += 1;
                }
            }
            step += 1;
            fault::step(self.phase, step, total);
        }

        // 3. The directories: renames, removals and new entries durable;
        // the files overwritten in place too, and only then the journal
        // goes.
        touched.retain(|d| fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()));
        let dirs: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
        done.syncs += sync_dirs(&dirs)?;
        if let Some(base) = &journal {
            let rewritten: Vec<&Path> = overwrites.iter().map(|o| o.target.as_path()).collect();
            done.syncs += sync_paths(&rewritten)?;
            crate::journal::remove(base)?;
        }
        if let Some(phase) = self.phase {
            fault::done(phase);
        }
        Ok(done)
    }

    /// Creates `dir` and its missing parents (mode 0700), remembering the
    /// ones created; refuses a non-directory (a link included) on the way.
    fn create_dirs(&mut self, dir: &Path) -> io::Result<()> {
        if self.known_dirs.contains(dir) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut d = dir;
        loop {
            match fs::symlink_metadata(d) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a directory",
                        d.display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push(d.to_path_buf());
                    match d.parent() {
                        Some(p) if !p.as_os_str().is_empty() => d = p,
                        _ => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        for d in missing.into_iter().rev() {
            create_dir_all_private(&d)?;
            self.created.push(d);
        }
        self.known_dirs.insert(dir.to_path_buf());
        Ok(())
    }
}

impl Drop for Batch {
    /// An uncommitted batch: the temporary files go (with `staged`), and
    /// the directories it created, when empty, children first.
    fn drop(&mut self) {
        self.staged.clear();
        for d in self.created.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// A file [`Batch::write_many_known`] will change: staged now, or
/// overwritten in `commit`.
enum Pending {
    Staged(Staged),
    Overwrite(Overwrite),
}

/// The overwrite of `path` by `bytes` when it is a regular file with no
/// other name that does not hold `bytes` (with `differs`, known not to:
/// not read); otherwise what is there: nothing, the same bytes, or
/// something [`stage`] must judge (a link, a directory, a hard link).
fn overwrite_of(path: &Path, bytes: &[u8], mode: u32, differs: bool) -> io::Result<Seen> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Seen::Absent),
        Err(e) => return Err(e),
    };
    if !crate::journal::in_place_ok(&meta) {
        return Ok(Seen::Other);
    }
    if !differs && holds(path, bytes)? {
        return Ok(Seen::Same);
    }
    Ok(Seen::Overwrite(Pending::Overwrite(Overwrite {
        target: path.to_path_buf(),
        bytes: bytes.to_vec(),
        mode,
    })))
}

/// What [`overwrite_of`] found at a path.
enum Seen {
    Overwrite(Pending),
    Same,
    Absent,
    Other,
}

/// Makes the files at `paths` (written, closed) durable: with many, on
/// Linux, one `syncfs` per file system their directories are on; else an
/// fsync each, in parallel (each reopened, never through a link, so at
/// most one descriptor per thread is open). Returns the number of sync
/// calls.
pub(crate) fn sync_paths(paths: &[&Path]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    if paths.len() > PER_FILE_SYNC_LIMIT {
        let dirs: BTreeSet<&Path> = paths.iter().map(|p| parent_of(p)).collect();
        return syncfs_each_device(&dirs.into_iter().collect::<Vec<_>>());
    }
    paths
        .par_iter()
        .map(|p| open_no_follow(p)?.sync_all())
        .collect::<io::Result<Vec<()>>>()?;
    Ok(paths.len())
}

/// From this many staged files on, [`Batch::commit`] renames into
/// different directories in parallel.
const PARALLEL_RENAMES_FROM: usize = 64;

/// Renames a staged file over its target; returns the target's directory.
fn rename_staged(s: Staged) -> io::Result<PathBuf> {
    let Staged { tmp, target, file } = s;
    drop(file);
    tmp.persist(&target).map_err(|e| {
        io::Error::new(
            e.error.kind(),
            format!("renaming over {}: {}", target.display(), e.error),
        )
    })?;
    Ok(parent_of(&target).to_path_buf())
}

/// Writes the temporary file for `path` in `dir`, or `None` when `path`
/// already holds `bytes`. With `differs` (the caller knows it does not),
/// `path` is only looked at, never read.
fn stage(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    mode: u32,
    keep_open: bool,
    differs: bool,
) -> io::Result<Option<Staged>> {
    if differs {
        if let AtPath::Other(what) = kind_at(path)? {
            return Err(not_regular(path, what));
        }
    } else if holds(path, bytes)? {
        return Ok(None);
    }
    stage_new(path, dir, bytes, mode, keep_open).map(Some)
}

/// [`stage`] once `path` is known to need its new bytes: the temporary
/// file, written, not synced.
fn stage_new(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    mode: u32,
    keep_open: bool,
) -> io::Result<Staged> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    set_mode(tmp.as_file(), mode)?;
    tmp.write_all(bytes)?;
    let (file, tmp) = tmp.into_parts();
    Ok(Staged {
        tmp,
        target: path.to_path_buf(),
        file: keep_open.then_some(file),
    })
}

/// What is at a path, seen without following it.
enum AtPath {
    Nothing,
    /// A regular file; `same`: it holds exactly the bytes asked about.
    File {
        same: bool,
    },
    /// A link, a directory or another kind of file (never read).
    Other(&'static str),
}

/// What is at `path`, compared with `bytes` when it is a regular file (read
/// with `O_NOFOLLOW | O_NONBLOCK`, and only when the sizes agree).
fn at_path(path: &Path, bytes: &[u8]) -> io::Result<AtPath> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AtPath::Nothing),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(AtPath::Other(kind_name(&meta)));
    }
    if meta.len() != bytes.len() as u64 {
        return Ok(AtPath::File { same: false });
    }
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut existing = Vec::with_capacity(bytes.len());
    options
        .open(path)?
        .take(bytes.len() as u64 + 1)
        .read_to_end(&mut existing)?;
    Ok(AtPath::File {
        same: existing == bytes,
    })
}

/// Whether `path` is a regular file holding exactly `bytes`; an error when
/// it is a link, a directory or another kind of file.
fn holds(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    match at_path(path, bytes)? {
        AtPath::Nothing => Ok(false),
        AtPath::File { same } => Ok(same),
        AtPath::Other(what) => Err(not_regular(path, what)),
    }
}

/// What is at `path` (never followed, never read; a file counts as not
/// the same).
fn kind_at(path: &Path) -> io::Result<AtPath> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Ok(AtPath::File { same: false }),
        Ok(m) => Ok(AtPath::Other(kind_name(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AtPath::Nothing),
        Err(e) => Err(e),
    }
}

fn kind_name(meta: &fs::Metadata) -> &'static str {
    if meta.file_type().is_symlink() {
        "a symbolic link"
    } else if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!(
        "{} is {what}; natsform writes only regular files there",
        path.display()
    ))
}

/// Removes `path` without following it: a directory with its content, a
/// file or a link itself. Whether anything was there.
fn remove_path(path: &Path) -> io::Result<bool> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("removing {}: {e}", path.display()),
        )),
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Makes the directories `dirs` durable: with many, on Linux, one
/// `syncfs` per file system; else an fsync each (in parallel), a failure
/// an error (see [`sync_dir_strict`]). Returns the number of sync calls.
fn sync_dirs(dirs: &[&Path]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    if dirs.len() > PER_FILE_SYNC_LIMIT {
        return syncfs_each_device(dirs);
    }
    dirs.par_iter()
        .map(|d| sync_dir_strict(d))
        .collect::<io::Result<Vec<()>>>()?;
    Ok(dirs.len())
}

/// Makes a directory's entries durable for a batch: unlike [`sync_dir`],
/// a failure is an error, because the next phase may only start once this
/// one's renames are durable (a lock naming a key whose seed's rename was
/// lost is what the ordering exists to prevent). Only a file system that
/// cannot sync directories at all (`EINVAL`, `ENOTSUP`) is tolerated: there,
/// durability is what that file system gives.
pub(crate) fn sync_dir_strict(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let d = fs::File::open(dir)?;
        match d.sync_all() {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTSUP)) => {
                Ok(())
            }
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// One `syncfs` for each file system the directories `dirs` are on.
#[cfg(target_os = "linux")]
fn syncfs_each_device(dirs: &[&Path]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let mut devices: BTreeMap<u64, &Path> = BTreeMap::new();
    for d in dirs {
        let dev = fs::metadata(d)?.dev();
        devices.entry(dev).or_insert(d);
    }
    for d in devices.values() {
        let f = fs::File::open(d)?;
        // SAFETY: syncfs takes any open descriptor on the file system.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("syncing the file system of {}: {e}", d.display()),
            ));
        }
    }
    Ok(devices.len())
}

/// `path` opened for writing (not created), never through a link at its
/// last component nor blocking on a FIFO there.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The testing hook `NATSFORM_FAULT=<phase>:<point>`, read here and only
/// here. It can only make apply stop early, like a crash: the process exits
/// (status [`fault::EXIT`]) without any cleanup, between two steps; it
/// cannot change what is written. `<point>` is `done` (after the phase is
/// committed, directories synced) or a number `k`: after the k-th rename
/// or removal of the phase's [`Batch::commit`] (0: once its temporary files
/// are durable, before any rename; `k` at or past the last step: before the
/// directory syncs).
pub(crate) mod fault {
    use std::sync::OnceLock;

    /// The exit status of a stop the hook made.
    pub const EXIT: i32 = 86;

    enum Point {
        Step(usize),
        Done,
    }

    fn wanted() -> Option<&'static (String, Point)> {
        static WANTED: OnceLock<Option<(String, Point)>> = OnceLock::new();
        WANTED
            .get_or_init(|| {
                let v = std::env::var("NATSFORM_FAULT").ok()?;
                let (phase, point) = v.split_once(':')?;
                let point = match point {
                    "done" => Point::Done,
                    k => Point::Step(k.parse().ok()?),
                };
                Some((phase.to_string(), point))
            })
            .as_ref()
    }

    fn stop(phase: &str, point: &str) -> ! {
        eprintln!("natsform: NATSFORM_FAULT: stopped at {phase}:{point} (a testing hook)");
        std::process::exit(EXIT)
    }

    /// Exits when the hook names step `step` of the `total` steps of
    /// `phase`'s commit, or a step past `total` and this is the last one.
    pub(crate) fn step(phase: Option<&str>, step: usize, total: usize) {
        if let (Some(phase), Some((p, Point::Step(k)))) = (phase, wanted()) {
            if p == phase && (*k == step || (step == total && *k > step)) {
                stop(phase, &format!("{step} of {total}"));
            }
        }
    }

    /// Whether the hook may stop `phase` at a numbered step (then its
    /// renames run one by one, in staging order, so that step is exact).
    pub(crate) fn stops_in(phase: Option<&str>) -> bool {
        matches!((phase, wanted()), (Some(phase), Some((p, Point::Step(_)))) if p == phase)
    }

    /// Exits when the hook names the end of `phase`.
    pub(crate) fn done(phase: &str) {
        if let Some((p, Point::Done)) = wanted() {
            if p == phase {
                stop(phase, "done");
            }
        }
    }
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

    fn temp_files(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else if is_temp_name(&e.file_name()) {
                    found.push(e.path());
                }
            }
        }
        found
    }

    #[test]
    fn a_batch_changes_nothing_until_commit_then_everything() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("same"), "same").unwrap();
        fs::write(d.join("old"), "old").unwrap();
        fs::write(d.join("gone"), "x").unwrap();
        let mut b = Batch::new();
        assert!(!b.write(&d.join("same"), b"same", 0o600).unwrap());
        assert!(b.write(&d.join("old"), b"new", 0o600).unwrap());
        assert!(b.write(&d.join("a/b/fresh"), b"fresh", 0o640).unwrap());
        assert!(b.remove(&d.join("gone")).unwrap());
        assert!(!b.remove(&d.join("never")).unwrap());
        assert_eq!(b.staged(), 2);
        // Staged: temporary files the sweep recognises; targets as they were.
        assert_eq!(temp_files(d).len(), 2);
        assert_eq!(fs::read(d.join("old")).unwrap(), b"old");
        assert!(!d.join("a/b/fresh").exists());
        assert!(d.join("gone").exists());
        let done = b.commit().unwrap();
        assert_eq!((done.written, done.removed), (2, 1));
        // Two files fsynced, then the directories d, a (new b), a/b.
        assert_eq!(done.syncs, 2 + 3);
        assert_eq!(fs::read(d.join("old")).unwrap(), b"new");
        assert_eq!(fs::read(d.join("a/b/fresh")).unwrap(), b"fresh");
        assert!(!d.join("gone").exists());
        assert!(temp_files(d).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("a/b/fresh"), 0o640);
            assert_eq!(mode("old"), 0o600);
            assert_eq!(mode("a"), 0o700);
        }
        // A second identical batch stages nothing.
        let mut b = Batch::new();
        assert!(!b.write(&d.join("old"), b"new", 0o600).unwrap());
        assert!(!b.write(&d.join("a/b/fresh"), b"fresh", 0o640).unwrap());
        assert_eq!(b.commit().unwrap(), Committed::default());
    }

    #[test]
    fn dropping_an_uncommitted_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("old"), "old").unwrap();
        let mut b = Batch::new();
        b.write(&d.join("old"), b"new", 0o600).unwrap();
        b.write(&d.join("x/y/new"), b"new", 0o600).unwrap();
        b.remove(&d.join("old")).unwrap();
        drop(b);
        assert_eq!(fs::read(d.join("old")).unwrap(), b"old");
        assert!(!d.join("x").exists());
        assert!(temp_files(d).is_empty());
    }

    #[test]
    fn write_many_keeps_the_order_and_says_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("u")).unwrap();
        fs::write(d.join("u/3"), "3").unwrap();
        let items: Vec<(PathBuf, Vec<u8>)> = (0..300)
            .map(|i| (d.join(format!("u/{i}")), i.to_string().into_bytes()))
            .collect();
        let mut b = Batch::new();
        let changed = b.write_many(&items, 0o600).unwrap();
        assert_eq!(changed.iter().filter(|c| !**c).count(), 1);
        assert!(!changed[3]);
        let order: Vec<&Path> = b.staged.iter().map(|s| s.target.as_path()).collect();
        let want: Vec<&Path> = items
            .iter()
            .filter(|(p, _)| !p.ends_with("3"))
            .map(|(p, _)| p.as_path())
            .collect();
        assert_eq!(order, want);
        let done = b.commit().unwrap();
        assert_eq!(done.written, 299);
        // Many files: one syncfs for the data and one for the directory
        // (Linux), not one fsync per file.
        #[cfg(target_os = "linux")]
        assert_eq!(done.syncs, 1 + 1);
        for (p, bytes) in &items {
            assert_eq!(&fs::read(p).unwrap(), bytes);
        }
        assert!(temp_files(d).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_known_to_differ_is_not_read_but_still_only_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("same"), "same").unwrap();
        let items = vec![(d.join("same"), b"same".to_vec())];
        let mut b = Batch::new();
        assert_eq!(
            b.write_many_known(&items, 0o600, &|_| false).unwrap(),
            [false]
        );
        // Told it differs, the batch does not compare: staged (a wrong
        // hint only rewrites a file with its own bytes).
        assert_eq!(
            b.write_many_known(&items, 0o600, &|_| true).unwrap(),
            [true]
        );
        assert_eq!(b.commit().unwrap().written, 1);
        assert_eq!(fs::read(d.join("same")).unwrap(), b"same");

        let outside = tempfile::tempdir().unwrap();
        let odd = odd_files(d, outside.path());
        let mut b = Batch::new();
        for (name, what) in odd {
            let items = vec![(d.join(name), b"evil".to_vec())];
            let e = b.write_many_known(&items, 0o600, &|_| true).unwrap_err();
            assert!(e.to_string().contains(what), "{name}: {e}");
        }
        assert_eq!(b.commit().unwrap().written, 0);
        assert_eq!(fs::read(outside.path().join("victim")).unwrap(), b"keep");
        assert!(temp_files(d).is_empty());
    }

    /// In `d`: `link` (to `outside/victim`, which holds "keep"), `dir` and
    /// `fifo`; each with the words a batch's refusal of it contains.
    fn odd_files(d: &Path, outside: &Path) -> [(&'static str, &'static str); 3] {
        use std::os::unix::fs::symlink;
        fs::write(outside.join("victim"), "keep").unwrap();
        symlink(outside.join("victim"), d.join("link")).unwrap();
        fs::create_dir(d.join("dir")).unwrap();
        let fifo =
            std::ffi::CString::new(d.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        [
            ("link", "a symbolic link"),
            ("dir", "a directory"),
            ("fifo", "not a regular file"),
        ]
    }

    #[test]
    fn a_batch_refuses_links_and_odd_files_and_never_follows_them() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let d = dir.path();
        let odd = odd_files(d, outside.path());
        symlink(outside.path(), d.join("dirlink")).unwrap();
        let mut b = Batch::new();
        for (name, what) in odd {
            // Same length as "keep": a compare would read the target.
            let e = b.write(&d.join(name), b"keep", 0o600).unwrap_err();
            assert!(e.to_string().contains(what), "{name}: {e}");
        }
        let e = b
            .write(&d.join("dirlink/victim"), b"evil", 0o600)
            .unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        // Removing a link removes the link only.
        assert!(b.remove(&d.join("dirlink")).unwrap());
        b.remove_dir_if_empty(&d.join("dir"));
        let done = b.commit().unwrap();
        assert_eq!((done.written, done.removed), (0, 1));
        assert!(fs::symlink_metadata(d.join("dirlink")).is_err());
        assert!(!d.join("dir").exists());
        assert_eq!(fs::read(outside.path().join("victim")).unwrap(), b"keep");
    }

    #[test]
    fn removals_take_directories_with_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("acc/users")).unwrap();
        fs::write(d.join("acc/users/u.jwt"), "x").unwrap();
        fs::create_dir_all(d.join("keep")).unwrap();
        fs::write(d.join("keep/f"), "x").unwrap();
        let mut b = Batch::new();
        assert!(b.remove(&d.join("acc")).unwrap());
        // Inside a staged removal: nothing more to remove.
        assert!(!b.remove(&d.join("acc/users/u.jwt")).unwrap());
        assert!(!b.remove(&d.join("acc")).unwrap());
        b.remove_dir_if_empty(&d.join("keep"));
        assert_eq!(b.commit().unwrap().removed, 1);
        assert!(!d.join("acc").exists());
        assert!(d.join("keep/f").exists());
    }
}
