//! Saved plans (`plan --out FILE`, `apply FILE`): the JSON document plus a
//! fingerprint of the inputs it was computed from, so apply can refuse a
//! plan that no longer describes the manifest, lock and store, and say
//! which of them changed.
//!
//! Each input is hashed on its own (the store per JWT file, in parallel)
//! and the fingerprint hashes those digests in order, Merkle-style. The
//! saved plan keeps short digests of the manifest, the lock and the store:
//! per JWT file up to [`MAX_LISTED`] entries, else per account directory,
//! else per operator directory. Its size stays bounded by the entry count
//! (about 30 bytes plus the path an entry: 146 KB for 2,000 files with
//! 45-character paths; 47 KB for the 100,000-user benchmark store, 1,000
//! accounts of 100 users, listed per account) while a typical project's
//! stale plan names the exact files that changed.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::views::json::{self, FORMAT_VERSION as JSON_FORMAT_VERSION};
use super::Plan;

/// The most store entries a saved plan lists (per file, per account or per
/// operator, the finest that fits).
pub const MAX_LISTED: usize = 2_000;

/// How many changed inputs a message names before "and N more".
const SHOWN: usize = 5;

/// What apply reads back from a saved plan.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub inputs: Option<Inputs>,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedPlanError {
    #[error("the file is not a natsform plan: {0}")]
    NotAPlan(String),
    #[error("the plan has format version {0}; this natsform reads version {JSON_FORMAT_VERSION}")]
    Version(u32),
    #[error("the plan was saved without a fingerprint (use `natsform plan --out FILE`)")]
    NoFingerprint,
    #[error(
        "the plan is stale: {0}\nrun `natsform plan --out FILE` again, review that plan, and apply it"
    )]
    Stale(String),
}

/// How finely the store is listed in a saved plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBy {
    /// Each JWT file.
    File,
    /// The operator's JWT file, and each account directory (the account's
    /// JWT and its users').
    Account,
    /// Each operator directory.
    Operator,
}

/// Short digests of each input (SHA-256, first 8 bytes in hex: they only
/// name what changed; the fingerprint is the full check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub manifest: String,
    pub lock: String,
    /// JWT files in the store.
    pub store_files: usize,
    pub store_by: StoreBy,
    /// Store entry (a path in the store; directories end with `/`) → digest.
    pub store: BTreeMap<String, String>,
}

/// The inputs of a plan, hashed: what the fingerprint and [`Inputs`] are
/// computed from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    manifest: [u8; 32],
    lock: [u8; 32],
    /// (path in the store, digest), sorted by path.
    files: Vec<(String, [u8; 32])>,
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn short(d: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&d[..8])
}

impl Snapshot {
    /// Hashes the manifest, the lock and each store file (path in the
    /// store, `/`-separated; bytes), the files in parallel.
    pub fn new(manifest: &[u8], lock: &[u8], files: Vec<(String, &[u8])>) -> Snapshot {
        let mut files: Vec<(String, [u8; 32])> =
            files.into_par_iter().map(|(p, b)| (p, sha(b))).collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            manifest: sha(manifest),
            lock: sha(lock),
            files,
        }
    }

    /// The fingerprint: every digest, named and in order.
    pub fn fingerprint(&self) -> String {
        fingerprint(
            [("manifest", &self.manifest[..]), ("lock", &self.lock[..])]
                .into_iter()
                .chain(self.files.iter().map(|(p, d)| (p.as_str(), &d[..]))),
        )
    }

    /// The digests a saved plan keeps, at the finest granularity that
    /// lists at most [`MAX_LISTED`] entries.
    pub fn inputs(&self) -> Inputs {
        let by = [StoreBy::File, StoreBy::Account]
            .into_iter()
            .find(|by| self.entries(*by).len() <= MAX_LISTED)
            .unwrap_or(StoreBy::Operator);
        self.inputs_by(by)
    }

    fn inputs_by(&self, by: StoreBy) -> Inputs {
        Inputs {
            manifest: short(&self.manifest),
            lock: short(&self.lock),
            store_files: self.files.len(),
            store_by: by,
            store: self
                .entries(by)
                .into_iter()
                .map(|(k, d)| (k, short(&d)))
                .collect(),
        }
    }

    /// The store's entries at granularity `by`: a group's digest hashes
    /// its files' paths and digests.
    fn entries(&self, by: StoreBy) -> BTreeMap<String, [u8; 32]> {
        let mut groups: BTreeMap<String, Sha256> = BTreeMap::new();
        for (path, d) in &self.files {
            let h = groups.entry(group_of(path, by)).or_default();
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update(d);
        }
        groups
            .into_iter()
            .map(|(k, h)| (k, h.finalize().into()))
            .collect()
    }

    /// What changed between the inputs a plan was saved with and these:
    /// one line per input, the first [`SHOWN`] store entries then "and N
    /// more". `manifest`, `lock` and `store` are the names shown.
    pub fn changes_since(&self, saved: &Inputs, names: &Names) -> Vec<String> {
        let now = self.inputs_by(saved.store_by);
        let mut out = Vec::new();
        if now.manifest != saved.manifest {
            out.push(format!("the manifest {}", names.manifest));
        }
        if now.lock != saved.lock {
            out.push(format!("the lock {}", names.lock));
        }
        let keys: BTreeSet<&String> = saved.store.keys().chain(now.store.keys()).collect();
        let changed: Vec<String> = keys
            .into_iter()
            .filter_map(|k| {
                let how = match (saved.store.get(k), now.store.get(k)) {
                    (Some(a), Some(b)) if a == b => return None,
                    (Some(_), Some(_)) => "changed",
                    (Some(_), None) => "removed",
                    (None, _) => "added",
                };
                let what = if k.ends_with('/') { "files under " } else { "" };
                Some(format!("{what}{}/{k} ({how})", names.store))
            })
            .collect();
        let n = changed.len();
        out.extend(changed.into_iter().take(SHOWN));
        if n > SHOWN {
            out.push(format!("and {} more in the store", n - SHOWN));
        }
        out
    }
}

/// How messages name the inputs.
#[derive(Debug, Clone)]
pub struct Names {
    pub manifest: String,
    pub lock: String,
    /// The store directory, as the manifest names it.
    pub store: String,
}

/// The entry a store file is listed under at granularity `by`.
fn group_of(path: &str, by: StoreBy) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    match (by, parts.as_slice()) {
        (StoreBy::File, _) => path.to_string(),
        (StoreBy::Account, [op, "accounts", acct, _, ..]) => format!("{op}/accounts/{acct}/"),
        (StoreBy::Account, _) => path.to_string(),
        (StoreBy::Operator, [op, _, ..]) => format!("{op}/"),
        (StoreBy::Operator, _) => path.to_string(),
    }
}

/// Hash of named byte strings, in order.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in parts {
        // Length-prefixed, so no two different inputs hash the same stream.
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("sha256:{}", data_encoding::HEXLOWER.encode(&h.finalize()))
}

/// The saved form of `plan`.
pub fn save(plan: &Plan, snapshot: &Snapshot) -> String {
    json::saved_document(plan, &snapshot.fingerprint(), &snapshot.inputs())
}

/// Checks that `saved` (file text) is the plan `current` computed from
/// the inputs `snapshot`; when it is not, the error says what changed.
pub fn check(
    saved: &str,
    current: &Plan,
    snapshot: &Snapshot,
    names: &Names,
) -> Result<(), SavedPlanError> {
    let doc: SavedPlan =
        serde_json::from_str(saved).map_err(|e| SavedPlanError::NotAPlan(e.to_string()))?;
    if doc.format_version != JSON_FORMAT_VERSION {
        return Err(SavedPlanError::Version(doc.format_version));
    }
    let fp = doc.fingerprint.ok_or(SavedPlanError::NoFingerprint)?;
    if fp != snapshot.fingerprint() {
        let changes = match &doc.inputs {
            Some(inputs) => snapshot.changes_since(inputs, names),
            None => Vec::new(),
        };
        return Err(SavedPlanError::Stale(if changes.is_empty() {
            "the manifest, lock or store changed since it was saved (this plan does not record which)".into()
        } else {
            format!(
                "changed since it was saved:\n  - {}",
                changes.join("\n  - ")
            )
        }));
    }
    let now = save(current, snapshot);
    if now != saved {
        return Err(SavedPlanError::Stale(plan_differences(saved, &now)));
    }
    Ok(())
}

/// Why the same inputs give another plan: the parts of the two documents
/// that differ, named (which objects' actions, the vault part, blockers).
fn plan_differences(saved: &str, now: &str) -> String {
    use serde_json::Value;
    let (Ok(a), Ok(b)) = (
        serde_json::from_str::<Value>(saved),
        serde_json::from_str::<Value>(now),
    ) else {
        return "the plan file was edited".into();
    };
    let mut parts = Vec::new();
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        if a.get(key) == b.get(key) || key == "summary" || key == "changes" {
            continue;
        }
        let part = match key.as_str() {
            "actions" | "effects" => {
                let by_address = |v: Option<&Value>| -> BTreeMap<String, Value> {
                    v.and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|x| {
                            let addr = x["address"].as_str().unwrap_or("?").to_string();
                            (addr, x.clone())
                        })
                        .collect()
                };
                let (x, y) = (by_address(a.get(key)), by_address(b.get(key)));
                let addrs: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                let differ: Vec<&String> = addrs
                    .into_iter()
                    .filter(|k| x.get(*k) != y.get(*k))
                    .collect();
                let mut shown: Vec<String> =
                    differ.iter().take(SHOWN).map(|s| s.to_string()).collect();
                if differ.len() > SHOWN {
                    shown.push(format!("and {} more", differ.len() - SHOWN));
                }
                format!("its {key} for {}", shown.join(", "))
            }
            "vault" => {
                let ids = |v: Option<&Value>, list: &str, field: &str| -> BTreeSet<String> {
                    v.and_then(|v| v.get(list))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|x| x[field].as_str().unwrap_or("?").to_string())
                        .collect()
                };
                let reseal = changed_items(
                    &ids(a.get(key), "reseal", "address"),
                    &ids(b.get(key), "reseal", "address"),
                );
                let orphans = changed_items(
                    &ids(a.get(key), "orphans", "public_key"),
                    &ids(b.get(key), "orphans", "public_key"),
                );
                let mut v = Vec::new();
                if !reseal.is_empty() {
                    v.push(format!("seeds to re-seal: {reseal}"));
                }
                if !orphans.is_empty() {
                    v.push(format!("seed files to remove: {orphans}"));
                }
                format!("its vault part ({})", v.join("; "))
            }
            "blockers" | "warnings" | "new_keys" | "protected_deletes" | "lock_records" => {
                let texts = |v: Option<&Value>| -> BTreeSet<String> {
                    v.and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        // A blocker's first line says what; the rest is the fix.
                        .map(|x| {
                            x.as_str().map_or_else(
                                || x.to_string(),
                                |t| t.lines().next().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                };
                format!(
                    "its {} ({})",
                    key.replace('_', " "),
                    changed_items(&texts(a.get(key)), &texts(b.get(key)))
                )
            }
            other => format!("its {other}"),
        };
        parts.push(part);
    }
    if parts.is_empty() {
        return "the plan file was edited".into();
    }
    format!(
        "the manifest, lock and store are as they were, but the plan computed now differs \
         (seed files in the vault changed, or time passed a re-issue or expiry point):\n  - {}",
        parts.join("\n  - ")
    )
}

/// "now: x, y; no longer: z", each list cut after [`SHOWN`] items.
fn changed_items(saved: &BTreeSet<String>, now: &BTreeSet<String>) -> String {
    let list = |items: Vec<&String>| {
        let n = items.len();
        let mut shown: Vec<String> = items.into_iter().take(SHOWN).cloned().collect();
        if n > SHOWN {
            shown.push(format!("and {} more", n - SHOWN));
        }
        shown.join(", ")
    };
    let added: Vec<&String> = now.difference(saved).collect();
    let gone: Vec<&String> = saved.difference(now).collect();
    let mut out = Vec::new();
    if !added.is_empty() {
        out.push(format!("now: {}", list(added)));
    }
    if !gone.is_empty() {
        out.push(format!("no longer: {}", list(gone)));
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            manifest: "natsform.toml".into(),
            lock: "natsform.lock".into(),
            store: "store".into(),
        }
    }

    fn snap(manifest: &str, files: &[(&str, &str)]) -> Snapshot {
        Snapshot::new(
            manifest.as_bytes(),
            b"lock",
            files
                .iter()
                .map(|(p, b)| (p.to_string(), b.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let a = fingerprint([("x", &b"ab"[..]), ("y", &b"c"[..])]);
        let b = fingerprint([("x", &b"a"[..]), ("y", &b"bc"[..])]);
        assert_ne!(a, b);
        assert_eq!(a, fingerprint([("x", &b"ab"[..]), ("y", &b"c"[..])]));
        // The order files are given in does not matter; their content does.
        let s = snap("m", &[("O/O.jwt", "1"), ("O/accounts/A/A.jwt", "2")]);
        let t = snap("m", &[("O/accounts/A/A.jwt", "2"), ("O/O.jwt", "1")]);
        assert_eq!(s.fingerprint(), t.fingerprint());
        assert_ne!(
            s.fingerprint(),
            snap("m", &[("O/O.jwt", "1"), ("O/accounts/A/A.jwt", "3")]).fingerprint()
        );
    }

    #[test]
    fn a_saved_plan_checks_against_the_same_inputs_only() {
        let plan = Plan::default();
        let s = snap("m", &[("O/O.jwt", "1")]);
        let text = save(&plan, &s);
        assert_eq!(check(&text, &plan, &s, &names()), Ok(()));
        let t = snap("m2", &[("O/O.jwt", "1")]);
        assert_eq!(
            check(&text, &plan, &t, &names()),
            Err(SavedPlanError::Stale(
                "changed since it was saved:\n  - the manifest natsform.toml".into()
            ))
        );
        assert!(matches!(
            check("{}", &plan, &s, &names()),
            Err(SavedPlanError::NotAPlan(_))
        ));
        assert_eq!(
            check(&json::json(&plan), &plan, &s, &names()),
            Err(SavedPlanError::NoFingerprint)
        );
    }

    #[test]
    fn changed_store_files_are_named_then_counted() {
        let files: Vec<(String, String)> = (0..8)
            .map(|i| (format!("O/accounts/A/users/u{i}.jwt"), "x".to_string()))
            .collect();
        let refs = |fs: &[(String, String)]| -> Vec<(String, Vec<u8>)> {
            fs.iter()
                .map(|(p, b)| (p.clone(), b.clone().into_bytes()))
                .collect()
        };
        let mk = |fs: &[(String, String)]| {
            let owned = refs(fs);
            Snapshot::new(
                b"m",
                b"lock",
                owned.iter().map(|(p, b)| (p.clone(), &b[..])).collect(),
            )
        };
        let before = mk(&files).inputs();
        assert_eq!(before.store_by, StoreBy::File);
        let mut after = files.clone();
        for f in after.iter_mut().take(7) {
            f.1 = "y".into();
        }
        after.remove(7);
        after.push(("O/accounts/B/B.jwt".into(), "z".into()));
        let changes = mk(&after).changes_since(&before, &names());
        assert_eq!(
            changes,
            vec![
                "store/O/accounts/A/users/u0.jwt (changed)",
                "store/O/accounts/A/users/u1.jwt (changed)",
                "store/O/accounts/A/users/u2.jwt (changed)",
                "store/O/accounts/A/users/u3.jwt (changed)",
                "store/O/accounts/A/users/u4.jwt (changed)",
                "and 4 more in the store",
            ]
        );
    }

    /// A snapshot of a store whose files at `paths` all hold the same bytes.
    fn same_bytes(paths: &[String]) -> Snapshot {
        Snapshot::new(
            b"m",
            b"l",
            paths.iter().map(|p| (p.clone(), &b"x"[..])).collect(),
        )
    }

    #[test]
    fn large_stores_are_listed_per_account_then_per_operator() {
        let n = MAX_LISTED + 1;
        let paths: Vec<String> = (0..n)
            .map(|i| format!("O/accounts/A{}/users/u{i}.jwt", i % 3))
            .collect();
        let s = same_bytes(&paths);
        let inputs = s.inputs();
        assert_eq!(inputs.store_by, StoreBy::Account);
        assert_eq!(inputs.store.len(), 3);
        assert_eq!(inputs.store_files, n);
        // One user changed: its account directory is named.
        let mut changed: Vec<(String, &[u8])> =
            paths.iter().map(|p| (p.clone(), &b"x"[..])).collect();
        changed[4].1 = b"y";
        let t = Snapshot::new(b"m", b"l", changed);
        assert_eq!(
            t.changes_since(&inputs, &names()),
            vec!["files under store/O/accounts/A1/ (changed)"]
        );
        // The 100,000-user benchmark's shape (1,000 accounts of 100 users):
        // listed per account, in about 47 KB.
        let paths: Vec<String> = (0..100_000)
            .map(|i| format!("O/accounts/acct{}/users/user{i}.jwt", i / 100))
            .chain(["O/O.jwt".to_string()])
            .collect();
        let s = same_bytes(&paths);
        let inputs = s.inputs();
        assert_eq!(inputs.store_by, StoreBy::Account);
        let size = serde_json::to_string_pretty(&inputs).unwrap().len();
        assert!((30_000..60_000).contains(&size), "{size}");
        // At the limit, per file: under 150 KB.
        let paths: Vec<String> = (0..MAX_LISTED)
            .map(|i| format!("operator/accounts/account{}/users/user{i}.jwt", i / 100))
            .collect();
        let s = same_bytes(&paths);
        let inputs = s.inputs();
        assert_eq!(inputs.store_by, StoreBy::File);
        let size = serde_json::to_string_pretty(&inputs).unwrap().len();
        assert!(size < 150_000, "{size}");
        // Many accounts: per operator.
        let paths: Vec<String> = (0..n)
            .map(|i| format!("O/accounts/A{i}/A{i}.jwt"))
            .collect();
        let s = same_bytes(&paths);
        assert_eq!(s.inputs().store_by, StoreBy::Operator);
    }
}
