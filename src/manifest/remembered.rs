//! The parsed-manifest cache: the model `plan` last parsed from a
//! manifest's exact text, so that a plan of an unchanged 100,000-user
//! manifest reads the model back (≈ 0.06 s) instead of parsing TOML again
//! (≈ 0.35 s on one core, and ≈ 220 MiB the parser holds at once).
//!
//! Only `plan` reads it (not `plan --live`, which signs with a
//! system-account seed). `apply`, `creds`, `plan --live` and every other
//! command parse the manifest every time: what is signed, sealed, pushed or
//! handed out never rests on the cache. `plan`, `apply`, `plan --live` and
//! `plan --verify-all` write the model they parsed (so the first plan after
//! an apply reads it back), only when the entry's bytes change. An entry is
//! found by the SHA-256 of the manifest's bytes with its syntax, natsform's
//! version, the model's schema and the executable's identity on disk: one
//! changed byte, another build or another model is a miss, and the next
//! plan writes the entry again. It lives beside the verified cache, under
//! the same rules (`cachefile`): `$XDG_CACHE_HOME/natsform/parsed-manifests/
//! <sha256 of the canonical manifest path>`, one entry per manifest, the
//! model as JSON after a fixed header.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::load::{Format, MAX_MANIFEST_BYTES};
use super::model::Manifest;
use crate::cachefile::{self, esc, Unusable};

const MAGIC: &[u8; 8] = b"NFMANI\0\x01";
const HEADER_LEN: usize = 8 + 32;
/// The model as JSON is about as long as the manifest (5.2 MB for the
/// 6 MB benchmark manifest); anything much longer is not an entry.
const LIMIT: u64 = HEADER_LEN as u64 + 4 * MAX_MANIFEST_BYTES;

/// Where one manifest's entry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCache {
    file: PathBuf,
}

/// What reading the cache gave.
#[derive(Debug)]
pub enum Lookup {
    /// The model of exactly this text.
    Hit(Box<Manifest>),
    /// Nothing for this text (absent, or written for another text).
    Miss,
    /// An entry that cannot be trusted or read: why (a note).
    Ignored(String),
}

/// What a load did with the cache (`load::load_remembered`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Used {
    /// The model came from the cache.
    Hit,
    /// The manifest was parsed: remember it once it is known to be good.
    Miss,
    /// The manifest was parsed; the entry could not be used (a note).
    Ignored(String),
}

impl ParsedCache {
    /// The entry of the manifest at `path`, from the environment: `None`
    /// without an absolute `XDG_CACHE_HOME` or `HOME`, or when the path has
    /// no canonical form.
    pub fn for_manifest(path: &Path) -> Option<ParsedCache> {
        let root = cachefile::root_from_env()?;
        let canonical = std::fs::canonicalize(path).ok()?;
        Some(ParsedCache::at(&root, &canonical))
    }

    /// The entry of the manifest `canonical` under cache root `root`.
    pub fn at(root: &Path, canonical: &Path) -> ParsedCache {
        ParsedCache {
            file: cachefile::file_for(root, "parsed-manifests", canonical),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The model remembered for exactly `text`, if any. Only the header
    /// is read when the entry is for another text.
    pub fn load(&self, format: Format, text: &str) -> Lookup {
        let ignored = |why: &str| {
            Lookup::Ignored(format!(
                "ignored the parsed-manifest cache {} ({why}); the manifest was parsed",
                esc(&self.file)
            ))
        };
        let (head, opened, len) = match cachefile::read_head(&self.file, HEADER_LEN) {
            Ok(read) => read,
            Err(Unusable::Absent) => return Lookup::Miss,
            Err(Unusable::Ignored(why)) => return ignored(&why),
        };
        if head.len() < HEADER_LEN || &head[..8] != MAGIC {
            return ignored("not a natsform parsed-manifest cache");
        }
        if head[8..] != key(format, text) {
            return Lookup::Miss;
        }
        let model = match cachefile::read_rest(opened, len, LIMIT) {
            Ok(model) => model,
            Err(Unusable::Ignored(why)) => return ignored(&why),
            Err(Unusable::Absent) => return Lookup::Miss,
        };
        match serde_json::from_slice::<Manifest>(&model) {
            Ok(m) => Lookup::Hit(Box::new(m)),
            Err(_) => ignored("damaged: its model does not read back"),
        }
    }

    /// Remembers `manifest` as the model of `text`, the model parsed from
    /// it. `Ok(false)` when nothing was written: the entry holds exactly
    /// these bytes already (apply after the plan of the same manifest), or
    /// the model is too large to be an entry. An entry that differs in any
    /// byte (another text, damaged, or lying) is replaced.
    pub fn save(&self, format: Format, text: &str, manifest: &Manifest) -> Result<bool, String> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + text.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&key(format, text));
        serde_json::to_writer(&mut bytes, manifest).map_err(|e| e.to_string())?;
        if bytes.len() as u64 > LIMIT {
            return Ok(false);
        }
        // Unchanged bytes are not written again (`cachefile::write`).
        cachefile::write(&self.file, &bytes)
    }
}

/// What an entry is found by: the text's bytes and syntax, and what the
/// model means: natsform's version, the model's JSON Schema, and this
/// executable (its device, inode, size and modification time), so a build
/// whose parsing differs in anything (a unit, a parser crate) never reads
/// another build's entry.
fn key(format: Format, text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(concat!("natsform ", env!("CARGO_PKG_VERSION"), " parsed manifest\n").as_bytes());
    h.update(model_fingerprint());
    h.update(build_fingerprint());
    h.update(match format {
        Format::Toml => b"toml\n",
        Format::Yaml => b"yaml\n",
    });
    h.update(text.as_bytes());
    h.finalize().into()
}

/// The running executable's identity on disk (all zero when it cannot be
/// told: entries then still bind version and schema).
fn build_fingerprint() -> &'static [u8; 32] {
    static PRINT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    PRINT.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let Some(m) = std::env::current_exe()
            .ok()
            .and_then(|exe| std::fs::metadata(exe).ok())
        else {
            return [0; 32];
        };
        let mut h = Sha256::new();
        for n in [
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
        ] {
            h.update(n.to_le_bytes());
        }
        h.finalize().into()
    })
}

fn model_fingerprint() -> &'static [u8; 32] {
    static PRINT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    PRINT.get_or_init(|| Sha256::digest(super::schema::json_schema().as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str) -> Manifest {
        toml::from_str(text).unwrap()
    }

    const TEXT: &str = "[operators.o.accounts.a.users.u]\ntags = [\"team:x\"]\n";

    #[test]
    fn an_entry_is_found_only_by_the_exact_text_and_syntax() {
        let tmp = tempfile::tempdir().unwrap();
        let c = ParsedCache::at(tmp.path(), Path::new("/p/natsform.toml"));
        assert!(matches!(c.load(Format::Toml, TEXT), Lookup::Miss));
        assert_eq!(c.save(Format::Toml, TEXT, &model(TEXT)), Ok(true));
        assert_eq!(c.save(Format::Toml, TEXT, &model(TEXT)), Ok(false));
        let Lookup::Hit(m) = c.load(Format::Toml, TEXT) else {
            panic!("no hit")
        };
        assert_eq!(format!("{m:?}"), format!("{:?}", model(TEXT)));
        let other = TEXT.replace("team:x", "team:y");
        assert!(matches!(c.load(Format::Toml, &other), Lookup::Miss));
        assert!(matches!(c.load(Format::Yaml, TEXT), Lookup::Miss));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(c.path()).unwrap();
        assert!(matches!(c.load(Format::Toml, TEXT), Lookup::Miss));
    }

    #[test]
    fn a_damaged_or_linked_entry_is_ignored_with_a_note() {
        let tmp = tempfile::tempdir().unwrap();
        let c = ParsedCache::at(tmp.path(), Path::new("/p/natsform.toml"));
        c.save(Format::Toml, TEXT, &model(TEXT)).unwrap();
        let mut bytes = std::fs::read(c.path()).unwrap();
        let n = bytes.len();
        bytes.truncate(n - 3);
        std::fs::write(c.path(), &bytes).unwrap();
        let Lookup::Ignored(note) = c.load(Format::Toml, TEXT) else {
            panic!("a damaged entry was used")
        };
        assert!(note.contains("damaged"), "{note}");
        std::fs::remove_file(c.path()).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, b"x").unwrap();
        std::os::unix::fs::symlink(&elsewhere, c.path()).unwrap();
        let Lookup::Ignored(note) = c.load(Format::Toml, TEXT) else {
            panic!("a link was followed")
        };
        assert!(note.contains("symbolic link"), "{note}");
    }

    /// Every example manifest (`examples/full` sets every field) reads back
    /// from its entry as the same model: the model's JSON form loses
    /// nothing its TOML and YAML forms say.
    #[test]
    fn every_example_manifest_reads_back_as_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["examples", "tests/fixtures"] {
            for path in manifests_under(&root.join(dir)) {
                let Some(format) = super::super::load::format_of(&path) else {
                    continue;
                };
                let Ok(loaded) = super::super::load(&path) else {
                    continue;
                };
                let c = ParsedCache::at(tmp.path(), &path);
                c.save(format, &loaded.text, &loaded.manifest).unwrap();
                let Lookup::Hit(m) = c.load(format, &loaded.text) else {
                    panic!("{}: no hit", path.display())
                };
                assert_eq!(
                    format!("{m:?}"),
                    format!("{:?}", loaded.manifest),
                    "{}",
                    path.display()
                );
                seen += 1;
            }
        }
        // `examples/full` sets every field of the model.
        assert!(seen >= 4, "only {seen} example manifests");
    }

    /// Values whose JSON form is not their TOML form: relative expiry,
    /// durations, a zero size, unlimited, sampling by headers, SI sizes.
    #[test]
    fn units_read_back_as_parsed() {
        let text = r#"
reissue_before = "7d"
[operators.o]
expires = "365d"
[operators.o.accounts.a]
limits = { payload = 0, data = "unlimited", subs = -1, conn = 5 }
jetstream = { mem_storage = "1MB", disk_storage = "1GiB" }
[[operators.o.accounts.a.exports]]
subject = "svc.>"
type = "service"
response_type = "Stream"
response_threshold = "1500ms"
latency = { sampling = "headers", results = "lat.svc" }
[operators.o.accounts.a.users.u]
expires = "90d"
limits = { payload = "1KiB" }
"#;
        let m = model(text);
        let tmp = tempfile::tempdir().unwrap();
        let c = ParsedCache::at(tmp.path(), Path::new("/p/natsform.toml"));
        c.save(Format::Toml, text, &m).unwrap();
        let Lookup::Hit(back) = c.load(Format::Toml, text) else {
            panic!("no hit")
        };
        assert_eq!(format!("{back:?}"), format!("{m:?}"));
    }

    fn manifests_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(manifests_under(&p));
            } else if p
                .extension()
                .is_some_and(|x| x == "toml" || x == "yaml" || x == "yml")
            {
                out.push(p);
            }
        }
        out.sort();
        out
    }
}
