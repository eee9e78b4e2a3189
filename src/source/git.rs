//! A git tree at a revision as a [`Source`]: objects are read from the
//! repository's database (`git2`, local only), with no checkout and no
//! temporary copy. Entries of mode 120000 (symbolic links) and 160000
//! (submodules) are refused wherever they are met, as links are on disk.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use git2::{ObjectType, Oid, Repository, RepositoryOpenFlags};

use super::{refused, too_large, Kind, Source};

/// A repository found from a directory of its working tree.
pub struct Repo {
    repo: Repository,
    /// The working tree's root, canonical.
    workdir: PathBuf,
}

impl Repo {
    /// The repository `dir` is in, found as git finds it (walking up;
    /// `GIT_DIR` and `GIT_CEILING_DIRECTORIES` are honoured).
    pub fn discover(dir: &Path) -> Result<Repo> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let repo = Repository::open_ext(dir, RepositoryOpenFlags::FROM_ENV, &[] as &[&Path])
            .map_err(|e| {
                if e.code() == git2::ErrorCode::NotFound {
                    anyhow!(
                        "{} is not inside a git repository\n  = help: --base compares with a git revision: run it in a clone of the repository that holds the manifest",
                        dir.display()
                    )
                } else {
                    anyhow!("cannot open the git repository of {}: {}", dir.display(), e.message())
                }
            })?;
        let Some(workdir) = repo.workdir() else {
            bail!(
                "the git repository {} has no working tree\n  = help: run natsform in a clone with a working tree",
                repo.path().display()
            );
        };
        let workdir = workdir
            .canonicalize()
            .map_err(|e| anyhow!("reading {}: {e}", workdir.display()))?;
        Ok(Repo { repo, workdir })
    }

    /// `path` (a file of the working tree, relative to the current
    /// directory or absolute) relative to the repository's root. The file
    /// itself need not exist; its directory must.
    pub fn relative(&self, path: &Path) -> Result<PathBuf> {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = parent
            .canonicalize()
            .map_err(|e| anyhow!("reading {}: {e}", parent.display()))?;
        let rel = dir.strip_prefix(&self.workdir).map_err(|_| {
            anyhow!(
                "{} is outside the git repository at {}",
                path.display(),
                self.workdir.display()
            )
        })?;
        Ok(rel.join(name))
    }

    /// The tree of `rev` (anything `git rev-parse` takes: a branch, a tag,
    /// `HEAD~1`, a commit id).
    pub fn tree(&self, rev: &str) -> Result<GitTree> {
        let shown_rev = crate::safepath::escape_line(rev);
        let object = self.repo.revparse_single(rev).map_err(|e| {
            anyhow!(
                "unknown git revision `{shown_rev}`: {}\n  = help: name a branch, tag or commit of this repository (fetch it first if it is only on a remote)",
                e.message()
            )
        })?;
        let tree = object.peel_to_tree().map_err(|e| {
            anyhow!(
                "git revision `{shown_rev}` is not a commit or tree: {}",
                e.message()
            )
        })?;
        // The commit's id when there is one: that is what reviewers see.
        let id = object
            .peel_to_commit()
            .map(|c| c.id())
            .unwrap_or_else(|_| tree.id());
        let short = id.to_string()[..7].to_string();
        Ok(GitTree {
            git_dir: self.repo.path().to_path_buf(),
            handles: Mutex::new(Vec::new()),
            tree: tree.id(),
            rev: rev.to_string(),
            short,
            dirs: Mutex::new(HashMap::new()),
        })
    }
}

/// The tree of one revision. Reading is thread-safe: each thread borrows a
/// repository handle of its own from a small pool (`git2::Repository` may
/// move between threads but not be shared).
pub struct GitTree {
    git_dir: PathBuf,
    handles: Mutex<Vec<Repository>>,
    tree: Oid,
    rev: String,
    short: String,
    /// Every directory read so far (its path below the root → its
    /// entries): a store of 100,000 files and a vault as large are
    /// resolved one lookup per file, not by parsing each tree again.
    dirs: Mutex<HashMap<PathBuf, Arc<Entries>>>,
}

/// A directory's entries by name: kind and object id.
type Entries = HashMap<Vec<u8>, (Kind, Oid)>;

impl GitTree {
    /// The revision as given (`HEAD~1`).
    pub fn rev(&self) -> &str {
        &self.rev
    }

    /// The abbreviated id of its commit (or tree).
    pub fn short_id(&self) -> &str {
        &self.short
    }

    fn with_repo<R>(&self, f: impl FnOnce(&Repository) -> io::Result<R>) -> io::Result<R> {
        let taken = self.handles.lock().ok().and_then(|mut h| h.pop());
        let repo = match taken {
            Some(r) => r,
            None => Repository::open(&self.git_dir).map_err(git_err)?,
        };
        let result = f(&repo);
        if let Ok(mut h) = self.handles.lock() {
            h.push(repo);
        }
        result
    }

    /// The entry at `path`: its kind and object id. A link or submodule
    /// on the way is refused; a file on the way means nothing is there.
    fn resolve(&self, repo: &Repository, path: &Path) -> io::Result<Option<(Kind, Oid)>> {
        let mut dir = PathBuf::new();
        let mut last = None;
        for c in path.components() {
            match c {
                Component::Normal(p) => {
                    if let Some(prev) = last.replace(p) {
                        dir.push(prev);
                    }
                }
                Component::CurDir => {}
                _ => {
                    return Err(io::Error::other(format!(
                        "{} leaves the repository",
                        self.shown(path).display()
                    )))
                }
            }
        }
        let Some(name) = last else {
            return Ok(Some((Kind::Dir, self.tree)));
        };
        Ok(self
            .entries(repo, &dir)?
            .and_then(|e| e.get(name.as_encoded_bytes()).copied()))
    }

    /// The entries of the directory `dir` (normal components only), from
    /// the cache or read and cached; `None` when it does not exist.
    fn entries(&self, repo: &Repository, dir: &Path) -> io::Result<Option<Arc<Entries>>> {
        if let Some(found) = self.dirs.lock().ok().and_then(|d| d.get(dir).cloned()) {
            return Ok(Some(found));
        }
        let oid = match dir.parent() {
            None => self.tree,
            Some(parent) => {
                let name = dir.file_name().unwrap_or_default();
                let entry = self
                    .entries(repo, parent)?
                    .and_then(|e| e.get(name.as_encoded_bytes()).copied());
                match entry {
                    Some((Kind::Dir, oid)) => oid,
                    Some((k, _)) if k.is_link() => return Err(refused(&self.shown(dir), k)),
                    _ => return Ok(None),
                }
            }
        };
        let tree = repo.find_tree(oid).map_err(git_err)?;
        let entries: Arc<Entries> = Arc::new(
            tree.iter()
                .map(|e| {
                    (
                        e.name_bytes().to_vec(),
                        (kind_of_mode(e.filemode()), e.id()),
                    )
                })
                .collect(),
        );
        if let Ok(mut d) = self.dirs.lock() {
            d.insert(dir.to_path_buf(), entries.clone());
        }
        Ok(Some(entries))
    }
}

fn kind_of_mode(mode: i32) -> Kind {
    match mode & 0o170000 {
        0o040000 => Kind::Dir,
        0o100000 => Kind::File,
        0o120000 => Kind::Symlink,
        0o160000 => Kind::Submodule,
        _ => Kind::Other,
    }
}

/// A tree entry's name as an `OsString`: its bytes on Unix; elsewhere
/// lossily (names that are not UTF-8 are refused as store names anyway).
fn os_name(bytes: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes.to_vec())
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn git_err(e: git2::Error) -> io::Error {
    io::Error::other(format!("git: {}", e.message()))
}

impl Source for GitTree {
    fn kind(&self, path: &Path) -> io::Result<Option<Kind>> {
        self.with_repo(|repo| Ok(self.resolve(repo, path)?.map(|(k, _)| k)))
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
        self.with_repo(|repo| {
            let oid = match self.resolve(repo, path)? {
                None => return Ok(None),
                Some((Kind::File, oid)) => oid,
                Some((Kind::Dir, _)) => return Err(super::is_a_directory()),
                Some((k, _)) if k.is_link() => return Err(refused(&self.shown(path), k)),
                Some(_) => return Err(io::Error::other("not a regular file")),
            };
            // The size is in the object's header: a huge blob is refused
            // before it is inflated.
            let (size, kind) = repo
                .odb()
                .and_then(|odb| odb.read_header(oid))
                .map_err(git_err)?;
            if kind != ObjectType::Blob {
                return Err(io::Error::other("not a regular file"));
            }
            if size as u64 > limit {
                return Err(too_large(limit));
            }
            let blob = repo.find_blob(oid).map_err(git_err)?;
            Ok(Some(blob.content().to_vec()))
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        self.with_repo(|repo| {
            match self.resolve(repo, dir)? {
                None => return Ok(Vec::new()),
                Some((Kind::Dir, _)) => {}
                Some((k, _)) if k.is_link() => return Err(refused(&self.shown(dir), k)),
                Some(_) => {
                    return Err(io::Error::other(format!(
                        "reading {}: not a directory",
                        self.shown(dir).display()
                    )))
                }
            }
            let normal: PathBuf = dir
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            Ok(self
                .entries(repo, &normal)?
                .map(|e| e.iter().map(|(n, (k, _))| (os_name(n), *k)).collect())
                .unwrap_or_default())
        })
    }

    /// `REV:path`, as git names a file of a revision.
    fn shown(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!(
            "{}:{}",
            self.rev,
            path.to_string_lossy().trim_start_matches("./")
        ))
    }

    fn read_named(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        self.read(path, limit)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} ({}) has no file {}",
                    self.rev,
                    self.short,
                    path.display()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit: `a` (file), `d/b` (file), `l` (link
    /// to `a`), `d/l2` (link), `big` (100 bytes).
    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        {
            let blob = |b: &[u8]| repo.blob(b).unwrap();
            let mut sub = repo.treebuilder(None).unwrap();
            sub.insert("b", blob(b"bee"), 0o100644).unwrap();
            sub.insert("l2", blob(b"../a"), 0o120000).unwrap();
            let sub = sub.write().unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("a", blob(b"ay"), 0o100644).unwrap();
            root.insert("big", blob(&[b'x'; 100]), 0o100644).unwrap();
            root.insert("l", blob(b"a"), 0o120000).unwrap();
            root.insert("d", sub, 0o040000).unwrap();
            let tree = repo.find_tree(root.write().unwrap()).unwrap();
            let sig = git2::Signature::now("t", "t@example.com").unwrap();
            repo.commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
                .unwrap();
        }
        let found = Repo::discover(dir.path()).unwrap();
        (dir, found)
    }

    #[test]
    fn reads_files_lists_directories_and_refuses_links() {
        let (_dir, repo) = repo();
        let t = repo.tree("HEAD").unwrap();
        assert_eq!(t.short_id().len(), 7);
        assert_eq!(t.read(Path::new("a"), 10).unwrap().unwrap(), b"ay");
        assert_eq!(t.read(Path::new("./d/b"), 10).unwrap().unwrap(), b"bee");
        assert!(t.read(Path::new("none"), 10).unwrap().is_none());
        assert!(t.read(Path::new("a/x"), 10).unwrap().is_none());
        let e = t.read(Path::new("big"), 99).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        let e = t.read(Path::new("l"), 10).unwrap_err().to_string();
        assert!(e.starts_with("HEAD:l is a symbolic link"), "{e}");
        let e = t.read(Path::new("d/l2"), 10).unwrap_err().to_string();
        assert!(e.starts_with("HEAD:d/l2 is a symbolic link"), "{e}");
        assert_eq!(t.kind(Path::new("l")).unwrap(), Some(Kind::Symlink));
        assert_eq!(t.kind(Path::new("d")).unwrap(), Some(Kind::Dir));
        assert_eq!(t.kind(Path::new("")).unwrap(), Some(Kind::Dir));
        let mut names = t.list(Path::new("d")).unwrap();
        names.sort();
        assert_eq!(
            names,
            [("b".into(), Kind::File), ("l2".into(), Kind::Symlink)]
        );
        assert!(t.list(Path::new("nothing")).unwrap().is_empty());
        assert!(t.list(Path::new("a")).is_err());
        let e = t.list(Path::new("l")).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert!(t.read(Path::new("../a"), 10).is_err());
        // A link on the way is refused, not looked through.
        let e = t.read(Path::new("l/x"), 10).unwrap_err().to_string();
        assert!(e.starts_with("HEAD:l is a symbolic link"), "{e}");
        let e = t.list(Path::new("d/l2/y")).unwrap_err().to_string();
        assert!(e.starts_with("HEAD:d/l2 is a symbolic link"), "{e}");
        let e = t.read_named(Path::new("x.toml"), 10).unwrap_err();
        assert!(e.to_string().starts_with("HEAD ("), "{e}");
    }

    #[test]
    fn paths_are_relative_to_the_repository_root_and_revisions_are_checked() {
        let (dir, repo) = repo();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        assert_eq!(
            repo.relative(&dir.path().join("x/y/natsform.toml"))
                .unwrap(),
            Path::new("x/y/natsform.toml")
        );
        let e = repo.tree("nope").err().unwrap().to_string();
        assert!(e.starts_with("unknown git revision `nope`"), "{e}");
        let outside = tempfile::tempdir().unwrap();
        assert!(repo.relative(&outside.path().join("n.toml")).is_err());
    }

    #[test]
    fn reading_in_parallel_works() {
        use rayon::prelude::*;
        let (_dir, repo) = repo();
        let t = repo.tree("HEAD").unwrap();
        let all: Vec<_> = (0..64)
            .into_par_iter()
            .map(|_| t.read(Path::new("d/b"), 10).unwrap().unwrap())
            .collect();
        assert!(all.iter().all(|b| b == b"bee"));
    }
}
