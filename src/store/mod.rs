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

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::fsutil::write_atomic;
use crate::tree::ObjectId;

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

    pub fn root(&self) -> &Path {
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
        let mut ids = Vec::new();
        for op_dir in sorted_dirs(&self.root)? {
            let Some(op) = operator_name(&op_dir) else {
                continue;
            };
            ids.push(ObjectId::operator(&op));
            for acc_dir in sorted_dirs(&op_dir.join("accounts"))? {
                let acc = file_name(&acc_dir);
                ids.push(ObjectId::account(&op, &acc));
                for user_file in sorted_files(&acc_dir.join("users"), "jwt")? {
                    let user = user_file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    ids.push(ObjectId::user(&op, &acc, &user));
                }
            }
        }
        // Reading 100,000 small files is latency-bound: do it in parallel.
        let read: Vec<io::Result<Option<(ObjectId, StoredJwt)>>> = ids
            .into_par_iter()
            .map(|id| Ok(self.read_jwt(&id)?.map(|jwt| (id, jwt))))
            .collect();
        let mut contents = StoreContents::default();
        for entry in read {
            if let Some((id, jwt)) = entry? {
                contents.jwts.insert(id, jwt);
            }
        }
        Ok(contents)
    }

    fn read_jwt(&self, id: &ObjectId) -> io::Result<Option<StoredJwt>> {
        let path = self.path_of(id);
        match fs::read_to_string(&path) {
            // Go tools tolerate surrounding whitespace; so do we.
            Ok(text) => Ok(Some(StoredJwt {
                token: text.trim().to_string(),
                path,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", path.display()),
            )),
        }
    }

    /// Writes the JWT of `id` (and the operator's `.nsc` marker). Returns
    /// whether anything on disk changed.
    pub fn write(&self, id: &ObjectId, token: &str) -> io::Result<bool> {
        let marker = self.ensure_marker(&id.operator)?;
        let path = self.path_of(id);
        let wrote = write_atomic(&path, token.as_bytes(), 0o600)
            .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))?;
        Ok(marker || wrote)
    }

    /// Removes the JWT of `id`; an account also loses its directory (with
    /// its users). Returns whether anything was removed.
    pub fn remove(&self, id: &ObjectId) -> io::Result<bool> {
        let path = self.path_of(id);
        let target = match (&id.account, &id.user) {
            (Some(a), None) => self.root.join(&id.operator).join("accounts").join(a),
            (None, _) => self.root.join(&id.operator),
            _ => path.clone(),
        };
        let result = if target.is_dir() {
            fs::remove_dir_all(&target)
        } else {
            fs::remove_file(&target)
        };
        match result {
            Ok(()) => {
                if id.user.is_some() {
                    // An empty users/ directory is noise in git and in nsc.
                    if let Some(dir) = path.parent() {
                        let _ = fs::remove_dir(dir);
                    }
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("removing {}: {e}", target.display()),
            )),
        }
    }

    fn ensure_marker(&self, op: &str) -> io::Result<bool> {
        let body = format!(
            r#"{{"managed":false,"name":{},"kind":"operator","version":"1"}}"#,
            serde_json::to_string(op).expect("string serializes")
        );
        write_atomic(&self.root.join(op).join(".nsc"), body.as_bytes(), 0o600)
    }
}

/// The operator name from a directory's `.nsc` marker, if it is an operator directory.
fn operator_name(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(".nsc")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("kind")?.as_str()? != "operator" {
        return None;
    }
    let name = v.get("name")?.as_str()?.trim().to_string();
    (!name.is_empty()).then_some(name)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    list(dir, |p, t| t.is_dir() || (t.is_symlink() && p.is_dir()))
}

fn sorted_files(dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    list(dir, |p, t| {
        (t.is_file() || (t.is_symlink() && p.is_file())) && p.extension().is_some_and(|e| e == ext)
    })
}

/// Entries of `dir` that `keep` accepts, sorted; hidden ones skipped. The
/// entry's own file type avoids a `stat` per file (100,000 users).
fn list(dir: &Path, keep: impl Fn(&Path, fs::FileType) -> bool) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
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
        let p = entry.path();
        if keep(&p, entry.file_type()?) && !file_name(&p).starts_with('.') {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
