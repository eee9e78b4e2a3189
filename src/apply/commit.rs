//! `apply --commit`: records in git what apply wrote, as one commit on
//! `HEAD` that touches the store, `natsform.lock` and the vault and nothing
//! else (git2, local only).
//!
//! Two halves, around the writes of apply:
//!
//! - [`Commit::prepare`], before anything is written (before the plan is
//!   even confirmed): finds the repository from the manifest's directory,
//!   resolves the author and committer, and refuses when the three paths
//!   hold a change git does not have in `HEAD` (staged, unstaged or
//!   untracked). So, after the writes, every change under them is one
//!   apply made, and nothing has to be tracked write by write.
//! - [`Commit::record`], step 7b of apply (after the store is written,
//!   before the push to servers): builds the new tree from `HEAD`'s tree
//!   and the changed files' bytes (never from the index, so whatever else
//!   is staged stays staged and out of the commit), commits on `HEAD`, and
//!   updates only those paths in the index. No change, no commit.
//!
//! Files are read without following links and hashed as they are (no
//! filters); git hooks are not run, and commits are not signed.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::{FileMode, IndexEntry, IndexTime, Oid, Repository, RepositoryOpenFlags, Signature};

use crate::plan::{ActionKind, Plan};
use crate::safepath::escape_line;
use crate::workspace::Workspace;

/// The most files an error names; the rest are counted.
const MAX_NAMED: usize = 20;

/// The largest file committed (the lock's and a JWT's limit).
const MAX_FILE_BYTES: u64 = crate::source::MAX_LOCK_BYTES;

/// A prepared `--commit`: the repository, the paths it may commit, who
/// signs the commit; and, after [`Commit::record`], what it made.
pub struct Commit {
    repo: Repository,
    /// The working tree's root, canonical.
    workdir: PathBuf,
    /// Repository-relative, `/`-separated: the store and vault directories
    /// (`true`) and the lock file (`false`).
    scope: Vec<(String, bool)>,
    author: Signature<'static>,
    committer: Signature<'static>,
    /// The commit made, if any.
    pub made: Option<Made>,
}

/// A commit `--commit` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The full commit id.
    pub id: String,
    /// The message's first line.
    pub summary: String,
    /// How many files it added, changed or deleted.
    pub files: usize,
}

/// One changed file under the scope, repository-relative.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    path: String,
    status: git2::Status,
}

impl Commit {
    /// Everything `--commit` needs, checked before apply writes anything.
    /// `author` is `--author "Name <email>"`.
    ///
    /// Fails, with nothing changed, when the manifest is not in a git
    /// working tree, a merge or rebase is under way, no author is
    /// configured, or the store, lock or vault hold uncommitted changes.
    pub fn prepare(ws: &Workspace, author: Option<&str>) -> Result<Commit> {
        let base = ws.loaded.base_dir();
        let real_base = base
            .canonicalize()
            .with_context(|| format!("reading {}", escape_line(&base.display().to_string())))?;
        let shown_base = escape_line(&base.display().to_string()).into_owned();
        let repo = Repository::open_ext(&real_base, RepositoryOpenFlags::FROM_ENV, &[] as &[&Path])
            .map_err(|e| {
                if e.code() == git2::ErrorCode::NotFound {
                    anyhow!(
                        "apply --commit: the project directory {shown_base} is not inside a git repository; nothing was changed\n  = help: run it in a clone of the repository that holds the manifest, or apply without --commit"
                    )
                } else {
                    anyhow!(
                        "apply --commit: cannot open the git repository of {shown_base}: {}; nothing was changed",
                        escape_line(e.message())
                    )
                }
            })?;
        let Some(workdir) = repo.workdir() else {
            bail!("apply --commit: the git repository of {shown_base} has no working tree; nothing was changed\n  = help: run it in a clone with a working tree");
        };
        let workdir = workdir
            .canonicalize()
            .with_context(|| format!("reading {}", workdir.display()))?;
        let rel_base = real_base.strip_prefix(&workdir).map_err(|_| {
            anyhow!("apply --commit: the project directory {shown_base} is outside the working tree of its git repository; nothing was changed")
        })?;
        let mut scope = Vec::new();
        for (path, dir) in [
            (ws.store.root(), true),
            (ws.vault_dir.as_path(), true),
            (ws.lock_path.as_path(), false),
        ] {
            let below = path.strip_prefix(&base).unwrap_or(path);
            scope.push((git_path(&rel_base.join(below))?, dir));
        }
        if repo.state() != git2::RepositoryState::Clean {
            bail!(
                "apply --commit: the git repository is in the middle of a {}; nothing was changed\n  = help: finish or abort it first",
                state_name(repo.state())
            );
        }
        let (author, committer) = signatures(&repo, author)?;
        let commit = Commit {
            repo,
            workdir,
            scope,
            author,
            committer,
            made: None,
        };
        let dirty = commit.changes()?;
        if !dirty.is_empty() {
            bail!(
                "apply --commit: {} hold{} changes not committed, which this apply would mix into its commit; nothing was changed:\n{}\n  = help: commit or discard them first (`git status` lists them), or apply without --commit",
                commit.scope_names(),
                if commit.scope.len() == 1 { "s" } else { "" },
                list(&dirty)
            );
        }
        Ok(commit)
    }

    /// The three paths, for messages: `store/, vault/ and natsform.lock`.
    fn scope_names(&self) -> String {
        let names: Vec<String> = self
            .scope
            .iter()
            .map(|(p, dir)| format!("{}{}", escape_line(p), if *dir { "/" } else { "" }))
            .collect();
        match names.as_slice() {
            [a, b, c] => format!("{a}, {b} and {c}"),
            _ => names.join(", "),
        }
    }

    /// Whether `path` (repository-relative) is the lock or lies under the
    /// store or vault.
    fn in_scope(&self, path: &str) -> bool {
        self.scope.iter().any(|(p, dir)| {
            path == p
                || (*dir
                    && path.len() > p.len()
                    && path.starts_with(p.as_str())
                    && path.as_bytes()[p.len()] == b'/')
        })
    }

    /// Every file under the scope whose working-tree or index state differs
    /// from `HEAD` (ignored files and interrupted writes' temporary files
    /// aside), sorted by path.
    fn changes(&self) -> Result<Vec<Change>> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true)
            .renames_head_to_index(false)
            .renames_index_to_workdir(false);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| anyhow!("apply --commit: reading git status: {}", e.message()))?;
        let mut out = Vec::new();
        for entry in statuses.iter() {
            let status = entry.status();
            if status.is_empty() || status.contains(git2::Status::IGNORED) {
                continue;
            }
            let path = String::from_utf8_lossy(entry.path_bytes()).into_owned();
            if !self.in_scope(&path) || is_temp_file(&path) {
                continue;
            }
            out.push(Change { path, status });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Step 7b of apply: commits every change under the scope (all made by
    /// this apply, since [`Commit::prepare`] found none) on `HEAD`, with a
    /// message summarising `plan`, and brings those paths of the index to
    /// the new commit. Makes no commit when nothing changed.
    pub fn record(&mut self, plan: &Plan, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let changes = self.changes()?;
        if changes.is_empty() {
            progress("Nothing to commit: the store, lock and vault are as HEAD has them.");
            return Ok(());
        }
        let parent =
            match self.repo.head() {
                Ok(head) => Some(head.peel_to_commit().map_err(|e| {
                    anyhow!("apply --commit: HEAD is not a commit: {}", e.message())
                })?),
                Err(e) if e.code() == git2::ErrorCode::UnbornBranch => None,
                Err(e) => bail!("apply --commit: reading HEAD: {}", e.message()),
            };
        let git = |e: git2::Error| anyhow!("apply --commit: {}", e.message());
        let base_tree = match &parent {
            Some(c) => c.tree().map_err(git)?,
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .map_err(git)?
                    .write()
                    .map_err(git)?;
                self.repo.find_tree(empty).map_err(git)?
            }
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        let mut entries: Vec<Option<IndexEntry>> = Vec::new();
        for change in &changes {
            if change.path.contains('\0') || change.path.contains('\u{FFFD}') {
                bail!(
                    "apply --commit: {} is not a name natsform writes; nothing was committed",
                    escape_line(&change.path)
                );
            }
            match self.read(&change.path)? {
                Some((bytes, meta)) => {
                    let id = self.repo.blob(&bytes).map_err(git)?;
                    let mode = file_mode(&meta);
                    update.upsert(change.path.as_str(), id, mode);
                    entries.push(Some(index_entry(&change.path, id, mode, &meta)));
                }
                None => {
                    update.remove(change.path.as_str());
                    entries.push(None);
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &base_tree).map_err(git)?;
        if tree_id == base_tree.id() {
            progress("Nothing to commit: the store, lock and vault are as HEAD has them.");
            return Ok(());
        }
        let tree = self.repo.find_tree(tree_id).map_err(git)?;
        let message = message(plan);
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = self
            .repo
            .commit(
                Some("HEAD"),
                &self.author,
                &self.committer,
                &message,
                &tree,
                &parents,
            )
            .map_err(git)?;
        // The index follows the commit on these paths only: what else is
        // staged stays staged.
        self.update_index(&changes, entries).with_context(|| {
            format!("the commit {id} was made, but updating the git index failed\n  = help: `git reset` brings the index back to the commit")
        })?;
        let summary = message.lines().next().unwrap_or_default().to_string();
        progress(&format!(
            "Committed {} ({} file{}): {summary}",
            &id.to_string()[..7],
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ));
        self.made = Some(Made {
            id: id.to_string(),
            summary,
            files: changes.len(),
        });
        Ok(())
    }

    fn update_index(&self, changes: &[Change], entries: Vec<Option<IndexEntry>>) -> Result<()> {
        let mut index = self.repo.index()?;
        for (change, entry) in changes.iter().zip(entries) {
            match entry {
                Some(e) => index.add(&e)?,
                None => {
                    if index.get_path(Path::new(&change.path), 0).is_some() {
                        index.remove_path(Path::new(&change.path))?;
                    }
                }
            }
        }
        index.write()?;
        Ok(())
    }

    /// The bytes and metadata of the working-tree file at `path`
    /// (repository-relative), or `None` when it is gone. A link or anything
    /// but a regular file is refused, never followed.
    fn read(&self, path: &str) -> Result<Option<(Vec<u8>, std::fs::Metadata)>> {
        let full = self.workdir.join(path);
        let shown = escape_line(path).into_owned();
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Ok(m) if !m.file_type().is_file() => bail!(
                "apply --commit: {shown} is not a regular file (a link?); natsform commits only the files it writes, and nothing was committed"
            ),
            _ => {}
        }
        let file = options
            .open(&full)
            .with_context(|| format!("apply --commit: reading {shown}"))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            bail!("apply --commit: {shown} is not a regular file; nothing was committed");
        }
        if meta.len() > MAX_FILE_BYTES {
            bail!("apply --commit: {shown} is larger than {MAX_FILE_BYTES} bytes; nothing was committed");
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("apply --commit: reading {shown}"))?;
        Ok(Some((bytes, meta)))
    }
}

/// The commit message: a summary line with the plan's counts, then one line
/// per object, as apply's progress prints them.
fn message(plan: &Plan) -> String {
    let counts: Vec<String> = [
        (ActionKind::Create, "created"),
        (ActionKind::Update, "updated"),
        (ActionKind::Reissue, "re-issued"),
        (ActionKind::Replace, "replaced"),
        (ActionKind::Delete, "deleted"),
    ]
    .iter()
    .filter_map(|(kind, word)| {
        let n = plan.count(*kind);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    let mut text = if counts.is_empty() {
        "natsform apply: the lock and vault brought up to date".to_string()
    } else {
        format!("natsform apply: {}", counts.join(", "))
    };
    text.push('\n');
    if !plan.actions.is_empty() {
        text.push('\n');
        for a in &plan.actions {
            text.push_str(&format!(
                "{} {} {}\n",
                a.action.symbol(),
                escape_line(&a.address),
                super::past_tense(a.action)
            ));
        }
    }
    // Then what changes in the vault besides new keys, so that a reviewer
    // of the commit sees why vault files moved without a JWT changing.
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (keys, reseal, orphans) = (
        plan.new_keys.len(),
        plan.vault.reseal.len(),
        plan.vault.orphans.len(),
    );
    let mut vault = Vec::new();
    if keys > 0 {
        vault.push(format!(
            "{keys} new key{} (seeds encrypted in the vault)",
            plural(keys)
        ));
    }
    if reseal > 0 {
        vault.push(format!(
            "{reseal} seed{} re-sealed to the manifest's recipients",
            plural(reseal)
        ));
    }
    if orphans > 0 {
        vault.push(format!(
            "{orphans} unused seed file{} removed from the vault",
            plural(orphans)
        ));
    }
    if !vault.is_empty() {
        text.push('\n');
        for line in vault {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

/// Author and committer. The author: `--author`, else `GIT_AUTHOR_NAME`
/// and `GIT_AUTHOR_EMAIL`, else git config's `user.name`/`user.email`. The
/// committer: `GIT_COMMITTER_NAME`/`_EMAIL`, else git config, else the
/// author.
fn signatures(
    repo: &Repository,
    flag: Option<&str>,
) -> Result<(Signature<'static>, Signature<'static>)> {
    let from_env = |name: &str, email: &str| -> Result<Option<Signature<'static>>> {
        match (std::env::var(name), std::env::var(email)) {
            (Ok(n), Ok(e)) => Ok(Some(signature(&n, &e).with_context(|| {
                format!("apply --commit: {name} and {email} do not make an author")
            })?)),
            _ => Ok(None),
        }
    };
    let config = repo.signature().ok().map(|s| s.to_owned());
    let author = match flag {
        Some(text) => Some(parse_author(text)?),
        None => from_env("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL")?.or_else(|| config.clone()),
    };
    let Some(author) = author else {
        bail!("apply --commit needs an author, and git config has no user.name and user.email; nothing was changed\n  = help: set them (`git config user.name …`, `git config user.email …`) or pass --author \"Name <email>\"");
    };
    let committer = from_env("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")?
        .or(config)
        .unwrap_or_else(|| author.clone());
    Ok((author, committer))
}

/// `Name <email>`, as git's `--author` takes it.
fn parse_author(text: &str) -> Result<Signature<'static>> {
    let bad = || {
        anyhow!(
            "--author {} is not of the form \"Name <email>\"; nothing was changed",
            escape_line(&format!("{text:?}"))
        )
    };
    let text = text.trim();
    let (name, rest) = text.split_once('<').ok_or_else(bad)?;
    let email = rest.strip_suffix('>').ok_or_else(bad)?;
    signature(name.trim(), email.trim()).map_err(|_| bad())
}

/// A signature at the current time, refusing empty parts, angle brackets
/// and control characters.
fn signature(name: &str, email: &str) -> Result<Signature<'static>> {
    let ok = |s: &str| {
        !s.trim().is_empty() && !s.chars().any(|c| c.is_control() || c == '<' || c == '>')
    };
    if !ok(name) || !ok(email) {
        bail!("a name and an email, without control characters or angle brackets");
    }
    Ok(Signature::now(name.trim(), email.trim())?)
}

/// `path` (relative, normal components) as git spells it.
fn git_path(path: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| anyhow!("apply --commit: {} is not UTF-8", path.display()))?,
            ),
            Component::CurDir => {}
            _ => bail!("apply --commit: {} leaves the repository", path.display()),
        }
    }
    Ok(parts.join("/"))
}

/// A temporary file of an interrupted write (`.natsform-<alnum>.tmp`):
/// never committed; the next completed apply sweeps it.
fn is_temp_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix(".natsform-")
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The changes, one per line, at most [`MAX_NAMED`].
fn list(changes: &[Change]) -> String {
    let mut lines: Vec<String> = changes
        .iter()
        .take(MAX_NAMED)
        .map(|c| format!("  - {} ({})", escape_line(&c.path), describe(c.status)))
        .collect();
    if changes.len() > MAX_NAMED {
        lines.push(format!("  - and {} more", changes.len() - MAX_NAMED));
    }
    lines.join("\n")
}

/// `git status`'s words for a file's state.
fn describe(s: git2::Status) -> String {
    use git2::Status as S;
    if s.contains(S::CONFLICTED) {
        return "conflicted".into();
    }
    let mut parts = Vec::new();
    if s.intersects(
        S::INDEX_NEW
            | S::INDEX_MODIFIED
            | S::INDEX_DELETED
            | S::INDEX_TYPECHANGE
            | S::INDEX_RENAMED,
    ) {
        parts.push("staged");
    }
    if s.contains(S::WT_NEW) {
        parts.push("untracked");
    }
    if s.intersects(S::WT_MODIFIED | S::WT_TYPECHANGE | S::WT_RENAMED) {
        parts.push("modified");
    }
    if s.contains(S::WT_DELETED) {
        parts.push("deleted");
    }
    parts.join(", ")
}

fn state_name(s: git2::RepositoryState) -> &'static str {
    use git2::RepositoryState as R;
    match s {
        R::Merge => "merge",
        R::Revert | R::RevertSequence => "revert",
        R::CherryPick | R::CherryPickSequence => "cherry-pick",
        R::Bisect => "bisect",
        R::Rebase | R::RebaseInteractive | R::RebaseMerge => "rebase",
        R::ApplyMailbox | R::ApplyMailboxOrRebase => "git am",
        R::Clean => "clean state",
    }
}

fn file_mode(meta: &std::fs::Metadata) -> FileMode {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 != 0 {
            return FileMode::BlobExecutable;
        }
    }
    let _ = meta;
    FileMode::Blob
}

/// The index entry of a file just committed: its blob and its stat data,
/// so `git status` sees it unchanged without hashing it again.
fn index_entry(path: &str, id: Oid, mode: FileMode, meta: &std::fs::Metadata) -> IndexEntry {
    #[cfg(unix)]
    let (ctime, mtime, dev, ino, uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        (
            IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
            IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
            meta.dev() as u32,
            meta.ino() as u32,
            meta.uid(),
            meta.gid(),
        )
    };
    #[cfg(not(unix))]
    let (ctime, mtime, dev, ino, uid, gid) =
        (IndexTime::new(0, 0), IndexTime::new(0, 0), 0, 0, 0, 0);
    IndexEntry {
        ctime,
        mtime,
        dev,
        ino,
        mode: u32::try_from(i32::from(mode)).unwrap_or(0o100644),
        uid,
        gid,
        file_size: meta.len() as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_name_and_email() {
        let s = parse_author("Ann Example <ann@example.com>").unwrap();
        assert_eq!(s.name().ok(), Some("Ann Example"));
        assert_eq!(s.email().ok(), Some("ann@example.com"));
        for bad in [
            "Ann",
            "<ann@example.com>",
            "Ann <>",
            "Ann <a@b",
            "An\nn <a@b>",
            "A<n <a@b>",
            "Ann <a@b> x",
        ] {
            assert!(parse_author(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_interrupted_writes_are_temporary_files() {
        assert!(is_temp_file("store/O/.natsform-Ab12.tmp"));
        assert!(is_temp_file(".natsform-x.tmp"));
        for name in [
            "store/.natsform-.tmp",
            "a/.natsform-a.b.tmp",
            "a/natsform-a.tmp",
            "a/.natsform-a.tmpx",
        ] {
            assert!(!is_temp_file(name), "{name}");
        }
    }

    #[test]
    fn git_paths_use_slashes_and_stay_inside() {
        assert_eq!(git_path(Path::new("./a/./b/c")).unwrap(), "a/b/c");
        assert!(git_path(Path::new("a/../b")).is_err());
    }
}
