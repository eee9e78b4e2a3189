//! The JWT store in nsc's directory layout, so nsc and tools that read nsc
//! stores can use what natsform writes:
//!
//! ```text
//! <store>/<op>/.nsc                          {"managed":false,"name":"<op>","kind":"operator","version":"1"}
//! <store>/<op>/<op>.jwt
//! <store>/<op>/accounts/<acc>/<acc>.jwt
//! <store>/<op>/accounts/<acc>/users/<user>.jwt
//! ```
//!
//! Files hold the raw JWT without a newline, mode 0600; directories 0700.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::fsutil::Batch;
use crate::safepath::{self, check_no_links, is_safe_name};
use crate::source::{self, Kind, Source, WorkDir, MAX_JWT_BYTES, MAX_MARKER_BYTES};
use crate::tree::ObjectId;

/// The mode of the store's files (and of those the journal rewrites).
pub(crate) const JWT_FILE_MODE: u32 = 0o600;

/// How many JWT files [`Store::stage_writes`] stages between two progress
/// counts.
const STAGE_CHUNK: usize = 2048;

/// A JWT read from the store, not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJwt {
    pub path: PathBuf,
    pub token: String,
}

/// Everything in a store directory.
#[derive(Debug, Clone, Default)]
pub struct StoreContents {
    pub jwts: BTreeMap<ObjectId, StoredJwt>,
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where the JWT of `id` lives.
    pub fn path_of(&self, id: &ObjectId) -> PathBuf {
        let op_dir = self.root.join(&id.operator);
        match (&id.account, &id.user) {
            (None, _) => op_dir.join(format!("{}.jwt", id.operator)),
            (Some(a), None) => op_dir.join("accounts").join(a).join(format!("{a}.jwt")),
            (Some(a), Some(u)) => op_dir
                .join("accounts")
                .join(a)
                .join("users")
                .join(format!("{u}.jwt")),
        }
    }

    /// Reads every operator directory (recognised by its `.nsc` marker, as
    /// nsc does) with its accounts and users. A missing store is empty.
    pub fn read(&self) -> io::Result<StoreContents> {
        self.read_from(&WorkDir)
    }

    /// [`Store::read`] from `src`, the store's root being a path of `src`.
    ///
    /// Nothing here follows a symbolic link (nor a git submodule): a link
    /// as the store root, as an operator, account or `users/` directory, as
    /// a marker or as a JWT file is refused with an error naming it. So is
    /// a name that could not be a manifest name ([`safepath::is_safe_name`]),
    /// and a marker whose operator name is not its directory's name (nsc
    /// names the directory after the operator; natsform builds every path
    /// from the name).
    pub fn read_from(&self, src: &dyn Source) -> io::Result<StoreContents> {
        let jwts = self.read_each(src, &|id, token| StoredJwt {
            token: token.to_string(),
            path: src.shown(&self.path_of(id)),
        })?;
        Ok(StoreContents {
            jwts: jwts.into_iter().collect(),
        })
    }

    /// [`Store::read_from`], handing each JWT (its text trimmed) to `make`
    /// as it is read, in parallel: for 100,000 users, decoding as the files
    /// come in spares a map of every file's text. In [`ObjectId`] order.
    ///
    /// Everything is listed first, so a refusal there comes before any
    /// error of reading, and of each the first in the order of the walk:
    /// the same error as when reading one file at a time. The users'
    /// directories of the working directory are opened once each, and the
    /// users' files by name in them.
    pub fn read_each<T: Send>(
        &self,
        src: &dyn Source,
        make: &(dyn Fn(&ObjectId, &str) -> T + Sync),
    ) -> io::Result<Vec<(ObjectId, T)>> {
        check_not_link(src, &self.root)?;
        let mut operators = Vec::new();
        for op_dir in sorted_dirs(src, &self.root)? {
            let Some(op) = operator_name(src, &op_dir)? else {
                continue;
            };
            // 1,000 accounts' users listed at once.
            let listed: Vec<io::Result<Listed>> = sorted_dirs(src, &op_dir.join("accounts"))?
                .into_par_iter()
                .map(|acc_dir| {
                    let acc = entry_name(&acc_dir, "account", &src.shown(&acc_dir))?;
                    let users_dir = acc_dir.join("users");
                    let mut users = Vec::new();
                    for file in sorted_files(src, &users_dir, "jwt")? {
                        let user = entry_name(
                            Path::new(file.file_stem().unwrap_or_default()),
                            "user",
                            &src.shown(&file),
                        )?;
                        let name = file.file_name().unwrap_or_default().to_os_string();
                        users.push((ObjectId::user(&op, &acc, &user), name));
                    }
                    Ok(Listed {
                        account: ObjectId::account(&op, &acc),
                        users_dir,
                        users,
                    })
                })
                .collect();
            let accounts = listed.into_iter().collect::<io::Result<Vec<_>>>()?;
            operators.push((ObjectId::operator(&op), accounts));
        }
        // What each read gives: the object, and its value, nothing, or why not.
        type Outcome<T> = (ObjectId, io::Result<Option<T>>);
        let read_one = |id: ObjectId| -> Outcome<T> {
            let got = self
                .read_jwt(src, &id)
                .map(|jwt| jwt.map(|token| make(&id, &token)));
            (id, got)
        };
        let read_account =
            |listed: Listed| -> Vec<Outcome<T>> {
                let mut out = Vec::with_capacity(listed.users.len() + 1);
                out.push(read_one(listed.account));
                let users_dir =
                    match src.work_dir().filter(|_| !listed.users.is_empty()) {
                        Some(work_dir) => match work_dir.open_dir(&listed.users_dir) {
                            Ok(dir) => Some(dir),
                            Err(e) => {
                                // Listed a moment ago: each user reports it.
                                let kind = e.kind();
                                let message = e.to_string();
                                out.extend(listed.users.into_iter().map(|(id, _)| {
                                    (id, Err(io::Error::new(kind, message.clone())))
                                }));
                                return out;
                            }
                        },
                        None => None,
                    };
                let users: Vec<Outcome<T>> = match users_dir {
                    // Gone since it was listed: so are its users.
                    Some(None) => listed
                        .users
                        .into_iter()
                        .map(|(id, _)| (id, Ok(None)))
                        .collect(),
                    Some(Some(dir)) => listed
                        .users
                        .into_par_iter()
                        .with_min_len(64)
                        .map_init(Vec::new, |buf, (id, name)| {
                            let got = dir
                                .read_into(&name, MAX_JWT_BYTES, buf)
                                .and_then(|found| match found {
                                    true => jwt_text(buf).map(|t| Some(make(&id, t))),
                                    false => Ok(None),
                                })
                                .map_err(|e| self.read_error(src, &id, e));
                            (id, got)
                        })
                        .collect(),
                    None => listed
                        .users
                        .into_par_iter()
                        .map(|(id, _)| read_one(id))
                        .collect(),
                };
                out.extend(users);
                out
            };
        let mut read: Vec<Vec<Outcome<T>>> = Vec::new();
        for (op, accounts) in operators {
            read.push(vec![read_one(op)]);
            read.par_extend(accounts.into_par_iter().map(read_account));
        }
        let mut out = Vec::with_capacity(read.iter().map(Vec::len).sum());
        for (id, got) in read.into_iter().flatten() {
            if let Some(value) = got? {
                out.push((id, value));
            }
        }
        // Users were walked in the order of their file names.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn read_jwt(&self, src: &dyn Source, id: &ObjectId) -> io::Result<Option<String>> {
        let path = self.path_of(id);
        // User files were listed without following links; the operator's
        // and accounts' JWTs are opened by name, so look first.
        if id.user.is_none() {
            check_not_link(src, &path)?;
        }
        match src.read(&path, MAX_JWT_BYTES) {
            Ok(Some(bytes)) => jwt_text(&bytes)
                .map(|t| Some(t.to_string()))
                .map_err(|e| self.read_error(src, id, e)),
            Ok(None) => Ok(None),
            Err(e) => Err(self.read_error(src, id, e)),
        }
    }

    /// An error reading the JWT of `id`, naming its file.
    fn read_error(&self, src: &dyn Source, id: &ObjectId, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("reading {}: {e}", src.shown(&self.path_of(id)).display()),
        )
    }

    /// Refuses `id` when one of its names is not a single safe file name,
    /// or when the store root, a directory on the way to `path` or `path`
    /// itself is a symbolic link.
    fn guard(&self, id: &ObjectId, path: &Path) -> io::Result<()> {
        self.guard_names(id)?;
        check_not_link(&WorkDir, &self.root)?;
        check_no_links(&self.root, path)
    }

    /// [`Store::guard`]'s check of the names alone.
    fn guard_names(&self, id: &ObjectId) -> io::Result<()> {
        let names = [Some(&id.operator), id.account.as_ref(), id.user.as_ref()];
        if let Some(bad) = names.into_iter().flatten().find(|n| !is_safe_name(n)) {
            return Err(io::Error::other(format!(
                "`{}` cannot name a file in the store at {}",
                safepath::escape_line(bad),
                self.root.display()
            )));
        }
        Ok(())
    }

    /// Writes the JWT of `id` (and the operator's `.nsc` marker), durably.
    /// Returns whether anything on disk changed.
    pub(crate) fn write(&self, id: &ObjectId, token: &str) -> io::Result<bool> {
        let mut batch = Batch::new();
        let changed = self.stage_writes(&[(id, token, None)], &mut batch, &mut |_| {})?;
        batch.commit()?;
        Ok(changed[0])
    }

    /// Stages in `batch` the JWT of each `(id, token, was)` and the `.nsc`
    /// marker of each operator among them (markers first), the JWT files
    /// written in parallel. `was` is the token this run read from that
    /// file (trimmed, under the run lock), if any: when the new token
    /// differs from it, the file is known to differ and is not read again
    /// to compare. Returns, per item, whether anything on disk will
    /// change for it (its JWT, or the marker it brings).
    pub(crate) fn stage_writes(
        &self,
        items: &[(&ObjectId, &str, Option<&str>)],
        batch: &mut Batch,
        done: &mut dyn FnMut(usize),
    ) -> io::Result<Vec<bool>> {
        let mut markers: Vec<(PathBuf, String)> = Vec::new();
        let mut first_of_operator: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, (id, _, _)) in items.iter().enumerate() {
            if first_of_operator.contains_key(id.operator.as_str()) {
                continue;
            }
            first_of_operator.insert(&id.operator, i);
            let op = &id.operator;
            let path = self.root.join(op).join(".nsc");
            self.guard(&ObjectId::operator(op), &path)?;
            let body = format!(
                r#"{{"managed":false,"name":{},"kind":"operator","version":"1"}}"#,
                serde_json::to_string(op).expect("string serializes")
            );
            markers.push((path, body));
        }
        let marker_changed = batch
            .write_many(&markers, JWT_FILE_MODE)
            .map_err(|e| io::Error::new(e.kind(), format!("writing a store marker: {e}")))?;
        // [`Store::guard`], with each directory walked once (10,000 users
        // share one): the names, the directories from the store root down
        // to each file's, then each file itself.
        let paths: Vec<PathBuf> = items
            .par_iter()
            .map(|(id, _, _)| {
                self.guard_names(id)?;
                Ok(self.path_of(id))
            })
            .collect::<io::Result<_>>()?;
        check_not_link(&WorkDir, &self.root)?;
        let dirs: BTreeSet<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
        for dir in dirs {
            check_no_links(&self.root, dir)?;
        }
        let mut changed = Vec::with_capacity(items.len());
        let mut paths = paths.into_iter();
        for chunk in items.chunks(STAGE_CHUNK) {
            let chunk_paths: Vec<PathBuf> = paths.by_ref().take(chunk.len()).collect();
            let files: Vec<(PathBuf, &[u8])> = chunk
                .par_iter()
                .zip(chunk_paths)
                .map(|((_, token, _), path)| {
                    check_not_link(&WorkDir, &path)?;
                    Ok((path, token.as_bytes()))
                })
                .collect::<io::Result<_>>()?;
            // A file read as `was` holds `was` with surrounding whitespace
            // at most; a token never has any, so a token other than `was`
            // is not what the file holds.
            let differs = |i: usize| chunk[i].2.is_some_and(|was| was != chunk[i].1);
            changed.extend(
                batch
                    .write_many_known(&files, JWT_FILE_MODE, &differs)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("writing in {}: {e}", self.root.display()))
                    })?,
            );
            done(chunk.len());
        }
        for ((_, i), m) in first_of_operator.iter().zip(marker_changed) {
            changed[*i] |= m;
        }
        Ok(changed)
    }

    /// Removes the JWT of `id` durably; an account also loses its directory
    /// (with its users). Returns whether anything was removed.
    #[cfg(test)]
    pub(crate) fn remove(&self, id: &ObjectId) -> io::Result<bool> {
        let mut batch = Batch::new();
        let removed = self.stage_remove(id, &mut batch)?;
        batch.commit()?;
        Ok(removed)
    }

    /// Stages in `batch` the removal of the JWT of `id`; an account's
    /// directory goes with its users, a user's emptied `users/` directory
    /// goes too. Returns whether there is anything to remove. The directory
    /// to remove and every directory above it up to the store root are
    /// checked not to be links first (the batch removes a directory without
    /// following links inside it).
    pub(crate) fn stage_remove(&self, id: &ObjectId, batch: &mut Batch) -> io::Result<bool> {
        let path = self.path_of(id);
        let target = match (&id.account, &id.user) {
            (Some(a), None) => self.root.join(&id.operator).join("accounts").join(a),
            (None, _) => self.root.join(&id.operator),
            _ => path.clone(),
        };
        self.guard(id, &target)?;
        let there = batch
            .remove(&target)
            .map_err(|e| io::Error::new(e.kind(), format!("removing {}: {e}", target.display())))?;
        if there && id.user.is_some() {
            // An empty users/ directory is noise in git and in nsc.
            if let Some(dir) = path.parent() {
                batch.remove_dir_if_empty(dir);
            }
        }
        Ok(there)
    }
}

/// An account directory as listed: its JWT and its users' files.
struct Listed {
    account: ObjectId,
    users_dir: PathBuf,
    /// Each user and its file's name in `users_dir`, in file name order.
    users: Vec<(ObjectId, std::ffi::OsString)>,
}

/// A JWT file's text: UTF-8, surrounding whitespace (which Go tools
/// tolerate) trimmed.
fn jwt_text(bytes: &[u8]) -> io::Result<&str> {
    std::str::from_utf8(bytes).map(str::trim).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The operator name from a directory's `.nsc` marker, if it is an
/// operator directory; an error if the marker is a link, or names an
/// operator other than its directory.
fn operator_name(src: &dyn Source, dir: &Path) -> io::Result<Option<String>> {
    let marker = dir.join(".nsc");
    check_not_link(src, &marker)?;
    let Ok(Some(bytes)) = src.read(&marker, MAX_MARKER_BYTES) else {
        return Ok(None);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    if v.get("kind").and_then(|k| k.as_str()) != Some("operator") {
        return Ok(None);
    }
    let Some(name) = v.get("name").and_then(|n| n.as_str()) else {
        return Ok(None);
    };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let dir_name = dir.file_name().and_then(|n| n.to_str());
    if crate::redact::contains_secret(name) {
        return Err(io::Error::other(format!(
            "{}: the operator name in this marker looks like a seed (not shown)\n  = help: a \
             seed never belongs in the store; correct `name`, and rotate the key whose seed it is",
            marker.display()
        )));
    }
    if dir_name != Some(name) {
        return Err(io::Error::other(format!(
            "{} names operator `{}`, but its directory is `{}`; natsform reads an operator \
             only from the directory of its own name\n  = help: nsc names the directory after \
             the operator: rename the directory to the operator's name, or correct `name` in \
             the marker (a name is one file name: no `/`, `\\`, `..` or control characters)",
            src.shown(&marker).display(),
            safepath::escape_line(name),
            safepath::escape_line(&dir.file_name().unwrap_or_default().to_string_lossy()),
        )));
    }
    entry_name(dir, "operator", &src.shown(&marker)).map(Some)
}

/// The name of a store entry (directory, or file stem given as `entry`),
/// refused when a manifest could not declare it: such a name could not be
/// managed, and could not be written back safely.
fn entry_name(entry: &Path, kind: &str, shown: &Path) -> io::Result<String> {
    let name = entry.file_name().and_then(|n| n.to_str());
    if name.is_some_and(crate::redact::contains_secret) {
        // Named by its directory only: the name itself is a secret.
        return Err(io::Error::other(format!(
            "{}: the name of an entry there looks like a seed (not shown); natsform expected \
             {kind} names\n  = help: a seed never belongs in the store; remove the entry, and \
             rotate the key whose seed it is",
            shown.parent().unwrap_or(Path::new("")).display(),
        )));
    }
    match name {
        Some(n) if is_safe_name(n) => Ok(n.to_string()),
        _ => Err(io::Error::other(format!(
            "{}: `{}` is not a usable {kind} name\n  = help: names become file names in the \
             store: no `/`, `\\`, control characters, leading `.` or surrounding spaces; \
             rename or remove it",
            shown.display(),
            safepath::escape_line(&entry.file_name().unwrap_or_default().to_string_lossy()),
        ))),
    }
}

/// Refuses `path` itself when it is a link or submodule in `src`.
fn check_not_link(src: &dyn Source, path: &Path) -> io::Result<()> {
    match src.kind(path)? {
        Some(kind) if kind.is_link() => Err(source::refused(&src.shown(path), kind)),
        _ => Ok(()),
    }
}

fn sorted_dirs(src: &dyn Source, dir: &Path) -> io::Result<Vec<PathBuf>> {
    list(src, dir, |_, k| k == Kind::Dir)
}

fn sorted_files(src: &dyn Source, dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    list(src, dir, |p, k| {
        k == Kind::File && p.extension().is_some_and(|e| e == ext)
    })
}

/// Entries of `dir` that `keep` accepts, sorted; hidden ones skipped. The
/// entry's own kind (no `stat` per file on disk: 100,000 users), never a
/// link target's, so a visible link is refused here.
fn list(
    src: &dyn Source,
    dir: &Path,
    keep: impl Fn(&Path, Kind) -> bool,
) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (name, kind) in src.list(dir)? {
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let p = dir.join(name);
        if kind.is_link() {
            return Err(source::refused(&src.shown(&p), kind));
        }
        if keep(&p, kind) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nsc-store/stores")
    }

    #[test]
    fn reads_the_nsc_fixture_store() {
        let contents = Store::new(fixture()).read().unwrap();
        let ids: Vec<String> = contents.jwts.keys().map(|id| id.address()).collect();
        assert_eq!(
            ids,
            [
                "operator.O2",
                "account.O2/A",
                "user.O2/A/U",
                "user.O2/A/gone",
                "user.O2/A/worker",
                "account.O2/SYS",
                "user.O2/SYS/sys",
                "account.O2/sales",
                "user.O2/sales/joe",
                "user.O2/sales/pam",
            ]
        );
        assert!(contents
            .jwts
            .values()
            .all(|j| j.token.starts_with("eyJ") && j.token.split('.').count() == 3));
    }

    #[test]
    fn writes_in_nsc_layout_and_skips_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = ObjectId::user("O", "A", "U");
        assert!(store.write(&id, "a.b.c").unwrap());
        assert!(!store.write(&id, "a.b.c").unwrap());
        assert_eq!(
            fs::read_to_string(dir.path().join("O/accounts/A/users/U.jwt")).unwrap(),
            "a.b.c"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("O/.nsc")).unwrap(),
            r#"{"managed":false,"name":"O","kind":"operator","version":"1"}"#
        );
        assert!(store.remove(&id).unwrap());
        assert!(!dir.path().join("O/accounts/A/users").exists());
    }

    #[test]
    fn names_that_are_not_one_file_name_are_refused_for_writing_and_removing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"));
        for id in [
            ObjectId::operator("../x"),
            ObjectId::account("O", ".."),
            ObjectId::user("O", "A", "/abs"),
            ObjectId::user("O", "A", "e\u{1b}"),
        ] {
            assert!(store.write(&id, "a.b.c").is_err(), "{id:?}");
            assert!(store.remove(&id).is_err(), "{id:?}");
        }
        assert!(!dir.path().join("x").exists());
        assert!(!dir.path().join("store").exists());
    }

    #[cfg(unix)]
    #[test]
    fn links_are_refused_for_writing_and_removing() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(outside.path().join("A/users")).unwrap();
        fs::write(outside.path().join("A/A.jwt"), "keep").unwrap();
        let store = Store::new(dir.path());
        store.write(&ObjectId::account("O", "B"), "a.b.c").unwrap();
        symlink(outside.path().join("A"), dir.path().join("O/accounts/A")).unwrap();
        let e = store
            .write(&ObjectId::user("O", "A", "U"), "a.b.c")
            .unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        let e = store.remove(&ObjectId::account("O", "A")).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(store.read().is_err());
        assert_eq!(
            fs::read_to_string(outside.path().join("A/A.jwt")).unwrap(),
            "keep"
        );
        assert!(!outside.path().join("A/users/U.jwt").exists());
        // Removing an account whose users/ is a link removes the link, not
        // what it points to.
        let users = dir.path().join("O/accounts/B/users");
        symlink(outside.path().join("A/users"), &users).unwrap();
        fs::write(outside.path().join("A/users/keep.jwt"), "keep").unwrap();
        assert!(store.remove(&ObjectId::account("O", "B")).unwrap());
        assert!(outside.path().join("A/users/keep.jwt").exists());
    }

    #[test]
    fn a_marker_must_name_its_own_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("evil")).unwrap();
        fs::write(
            dir.path().join("evil/.nsc"),
            r#"{"managed":false,"name":"../../x","kind":"operator","version":"1"}"#,
        )
        .unwrap();
        let e = Store::new(dir.path()).read().unwrap_err().to_string();
        assert!(
            e.contains("names operator `../../x`, but its directory is `evil`"),
            "{e}"
        );
    }

    /// The working directory without its fast path: every file read by
    /// its whole path, as a git tree is.
    struct ByPath;

    impl Source for ByPath {
        fn kind(&self, path: &Path) -> io::Result<Option<Kind>> {
            WorkDir.kind(path)
        }
        fn read(&self, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
            WorkDir.read(path, limit)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<(std::ffi::OsString, Kind)>> {
            WorkDir.list(dir)
        }
        fn shown(&self, path: &Path) -> PathBuf {
            path.to_path_buf()
        }
    }

    /// A store of operator `O` with accounts `A` and `B`, two users each.
    fn small_store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        for id in [
            ObjectId::operator("O"),
            ObjectId::account("O", "A"),
            ObjectId::account("O", "B"),
            ObjectId::user("O", "A", "u1"),
            ObjectId::user("O", "A", "u2"),
            ObjectId::user("O", "B", "u1"),
            ObjectId::user("O", "B", "u2"),
        ] {
            store.write(&id, &format!("{}.b.c", id.address())).unwrap();
        }
        dir
    }

    /// What reading gives, by the fast path and by whole paths: they must
    /// agree, error for error.
    fn read_both(root: &Path) -> Result<Vec<(String, String)>, String> {
        let store = Store::new(root);
        let read = |src: &dyn Source| {
            store
                .read_from(src)
                .map(|c| {
                    c.jwts
                        .into_iter()
                        .map(|(id, j)| (id.address(), j.token))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string())
        };
        let fast = read(&WorkDir);
        assert_eq!(fast, read(&ByPath), "both paths read alike");
        fast
    }

    #[test]
    fn users_are_read_in_object_order_trimmed_alike_by_both_paths() {
        let dir = small_store();
        let u = dir.path().join("O/accounts/B/users/u1.jwt");
        fs::write(&u, " \n user.O/B/u1.b.c\r\n").unwrap();
        // Listed by file name (`u-x.jwt` before `u.jwt`), kept by object.
        for name in ["u.jwt", "u-x.jwt"] {
            let users = dir.path().join("O/accounts/A/users");
            fs::write(users.join(name), name).unwrap();
        }
        let read = read_both(dir.path()).unwrap();
        let ids: Vec<&str> = read.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            ids,
            [
                "operator.O",
                "account.O/A",
                "user.O/A/u",
                "user.O/A/u-x",
                "user.O/A/u1",
                "user.O/A/u2",
                "account.O/B",
                "user.O/B/u1",
                "user.O/B/u2",
            ]
        );
        assert!(read.contains(&("user.O/B/u1".into(), "user.O/B/u1.b.c".into())));
    }

    #[test]
    fn unreadable_users_are_refused_alike_by_both_paths() {
        let dir = small_store();
        let users = dir.path().join("O/accounts/A/users");
        fs::write(users.join("u2.jwt"), b"\xff\xfe").unwrap();
        let e = read_both(dir.path()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "reading {}: stream did not contain valid UTF-8",
                users.join("u2.jwt").display()
            )
        );
        // Over the limit: refused from its size, never read.
        fs::File::create(users.join("u2.jwt"))
            .unwrap()
            .set_len(MAX_JWT_BYTES + 1)
            .unwrap();
        let e = read_both(dir.path()).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "reading {}: the file is larger than 64 MiB",
                users.join("u2.jwt").display()
            )),
            "{e}"
        );
        // Exactly at the limit is read whole (and is then no JWT).
        fs::File::create(users.join("u2.jwt"))
            .unwrap()
            .set_len(MAX_JWT_BYTES)
            .unwrap();
        let read = read_both(dir.path()).unwrap();
        let (_, token) = read.iter().find(|(a, _)| a == "user.O/A/u2").unwrap();
        assert_eq!(token.len() as u64, MAX_JWT_BYTES);
    }

    #[cfg(unix)]
    #[test]
    fn a_listing_refusal_comes_before_any_read_error_and_read_errors_in_object_order() {
        use std::os::unix::fs::symlink;
        let dir = small_store();
        let a = dir.path().join("O/accounts/A/users");
        let b = dir.path().join("O/accounts/B/users");
        fs::write(a.join("u2.jwt"), b"\xff").unwrap();
        fs::write(b.join("u1.jwt"), b"\xff").unwrap();
        let e = read_both(dir.path()).unwrap_err();
        assert!(
            e.starts_with(&format!("reading {}", a.join("u2.jwt").display())),
            "{e}"
        );
        // A link in B is found while listing, before A's file is read.
        fs::remove_file(b.join("u2.jwt")).unwrap();
        symlink(a.join("u1.jwt"), b.join("u2.jwt")).unwrap();
        let e = read_both(dir.path()).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{} is a symbolic link",
                b.join("u2.jwt").display()
            )),
            "{e}"
        );
    }
}
