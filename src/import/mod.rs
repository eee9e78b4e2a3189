//! `natsform import nsc`: adopt an existing nsc store and keystore without
//! re-keying.
//!
//! Reading ([`read_nsc`]) turns the store's verified JWTs into a manifest
//! model, a lock binding every key address to the public key the JWTs
//! already carry, a byte-for-byte copy of the JWTs and the seeds the
//! keystore holds. Nothing in the nsc directories is written: every file is
//! read through [`crate::source::WorkDir`] (no link followed, size limits)
//! and the store through [`crate::store::Store::read`], which refuses links
//! and unsafe names. Writing ([`write::write_project`]) stages everything
//! in a temporary directory, checks that `plan` finds no change there, and
//! only then moves the four results into place.
//!
//! What the manifest cannot express is refused with the reason rather
//! than dropped: the import is only useful if the plan after it is empty.

mod convert;
pub mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use nkeys::KeyPair;

use crate::claims::{self, AnyClaims};
use crate::keys::{KeyKind, Lock};
use crate::manifest::Manifest;
use crate::safepath::escape_line;
use crate::source::{Kind, Source, WorkDir, MAX_SEED_FILE_BYTES};
use crate::store::Store;
use crate::tree::ObjectId;

pub use write::{write_project, Written};

/// An import problem: a sentence naming the file or object, and how to fix it.
#[derive(Debug)]
pub struct ImportError(pub String);

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

pub type Result<T> = std::result::Result<T, ImportError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ImportError(msg.into()))
}

fn shown(p: &Path) -> String {
    escape_line(&p.display().to_string()).into_owned()
}

/// Where the nsc store and keystore are, and how each was found.
#[derive(Debug, Clone)]
pub struct NscDirs {
    pub stores: PathBuf,
    pub stores_origin: String,
    pub keys: PathBuf,
    pub keys_origin: String,
}

/// nsc's own locations (nats-jwt-facts §10.1): flags, then `$NKEYS_PATH`
/// for keys, then the XDG data directory, then the legacy `~/.nsc/nats`
/// and `~/.nkeys` when the new one is absent and the old one exists.
pub fn locate(
    store: Option<PathBuf>,
    keys: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NscDirs> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let data = env("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    let nsc_data = data.map(|d| d.join("nats/nsc"));
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let pick = |new: Option<PathBuf>, legacy: Option<PathBuf>, what: &str, flag: &str| {
        let mut looked = Vec::new();
        for (p, origin) in [(new, "nsc's default"), (legacy, "nsc's legacy location")] {
            if let Some(p) = p {
                if exists(&p) {
                    return Ok((p, origin.to_string()));
                }
                looked.push(shown(&p));
            }
        }
        err(format!(
            "no nsc {what} found (looked in {})\n  = help: pass it with {flag} DIR",
            if looked.is_empty() {
                "no directory: HOME is not set".to_string()
            } else {
                looked.join(" and ")
            }
        ))
    };
    let (stores, stores_origin) = match store {
        Some(p) => (p, "--store".to_string()),
        None => pick(
            nsc_data.as_ref().map(|d| d.join("stores")),
            home.as_ref().map(|h| h.join(".nsc/nats")),
            "store",
            "--store",
        )?,
    };
    let (keys, keys_origin) = match (keys, env("NKEYS_PATH").filter(|p| !p.is_empty())) {
        (Some(p), _) => (p, "--keys".to_string()),
        (None, Some(p)) => (PathBuf::from(p), "$NKEYS_PATH".to_string()),
        (None, None) => pick(
            nsc_data.as_ref().map(|d| d.join("keys")),
            home.as_ref().map(|h| h.join(".nkeys")),
            "keystore",
            "--keys",
        )?,
    };
    Ok(NscDirs {
        stores,
        stores_origin,
        keys,
        keys_origin,
    })
}

/// What an import produces, before anything is written.
pub struct Imported {
    pub manifest: Manifest,
    pub lock: Lock,
    /// The JWTs to copy into natsform's store, byte for byte.
    pub jwts: BTreeMap<ObjectId, String>,
    /// Seeds found in the keystore (each checked to belong to its key).
    pub seeds: Vec<KeyPair>,
    /// Things the user must know (keys imported without their seed, revoked
    /// users kept only as revocations), in a stable order.
    pub notes: Vec<String>,
    /// How many operators, accounts and users were imported.
    pub counts: (usize, usize, usize),
}

impl fmt::Debug for Imported {
    /// Never prints a seed: only their public keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imported")
            .field("jwts", &self.jwts.len())
            .field(
                "seeds",
                &self
                    .seeds
                    .iter()
                    .map(KeyPair::public_key)
                    .collect::<Vec<_>>(),
            )
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

/// One decoded, verified JWT of the store.
pub(crate) struct Decoded {
    pub path: PathBuf,
    pub token: String,
    pub claims: AnyClaims,
}

/// Reads the nsc store and keystore of `dirs` and converts them. Writes
/// nothing.
pub fn read_nsc(dirs: &NscDirs) -> Result<Imported> {
    let src = WorkDir;
    match src.kind(&dirs.stores) {
        Ok(Some(Kind::Dir)) => {}
        Ok(Some(Kind::Symlink)) => {
            return err(format!(
                "the nsc store {} is a symbolic link; natsform does not follow links\n  = help: pass the directory it points to with --store",
                shown(&dirs.stores)
            ))
        }
        Ok(Some(_)) => {
            return err(format!(
                "the nsc store {} is not a directory\n  = help: pass nsc's stores directory (it holds one directory per operator) with --store",
                shown(&dirs.stores)
            ))
        }
        Ok(None) => {
            return err(format!(
                "there is no nsc store at {}\n  = help: pass nsc's stores directory (it holds one directory per operator) with --store",
                shown(&dirs.stores)
            ))
        }
        Err(e) => return err(format!("reading the nsc store {}: {e}", shown(&dirs.stores))),
    }
    if src.kind(&dirs.stores.join(".nsc")).ok().flatten().is_some() {
        return err(format!(
            "{} is one operator's directory, not nsc's stores directory\n  = help: pass its parent directory with --store",
            shown(&dirs.stores)
        ));
    }
    let contents = Store::new(&dirs.stores)
        .read()
        .map_err(|e| ImportError(format!("reading the nsc store: {e}")))?;
    if !contents.jwts.keys().any(|id| id.account.is_none()) {
        return err(format!(
            "the nsc store {} holds no operator (no directory with a `.nsc` marker and an operator JWT)\n  = help: pass nsc's stores directory with --store",
            shown(&dirs.stores)
        ));
    }
    let mut decoded = BTreeMap::new();
    for (id, jwt) in contents.jwts {
        let token = jwt.token.trim().to_string();
        let d = claims::decode(&token).map_err(|e| {
            ImportError(format!(
                "{}: the JWT does not verify: {e}\n  = help: natsform imports only JWTs signed as they claim; remove or fix this file in a copy of the store",
                shown(&jwt.path)
            ))
        })?;
        decoded.insert(
            id,
            Decoded {
                path: jwt.path,
                token,
                claims: d.claims,
            },
        );
    }
    let keystore = Keystore::open(&dirs.keys)?;
    convert::convert(&decoded, &keystore)
}

/// nsc's keystore: `<keys>/keys/<K>/<XY>/<PUBKEY>.nk` (facts §10.3).
pub(crate) struct Keystore {
    root: PathBuf,
}

/// What the keystore holds for one public key.
pub(crate) enum Found {
    Seed(Box<KeyPair>),
    Missing,
}

impl Keystore {
    fn open(root: &Path) -> Result<Keystore> {
        match WorkDir.kind(root) {
            Ok(Some(Kind::Dir)) => Ok(Keystore {
                root: root.to_path_buf(),
            }),
            Ok(Some(Kind::Symlink)) => err(format!(
                "the nsc keystore {} is a symbolic link; natsform does not follow links\n  = help: pass the directory it points to with --keys",
                shown(root)
            )),
            Ok(_) => err(format!(
                "there is no nsc keystore directory at {}\n  = help: pass nsc's keystore (it holds `keys/<kind>/…/<key>.nk`) with --keys",
                shown(root)
            )),
            Err(e) => err(format!("reading the nsc keystore {}: {e}", shown(root))),
        }
    }

    /// The seed of `public_key`, checked to belong to it. A file holding
    /// the public key itself (nsc accepts that) counts as missing.
    pub(crate) fn find(&self, public_key: &str) -> Result<Found> {
        if public_key.len() < 3 || !public_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(Found::Missing);
        }
        let src = WorkDir;
        let dirs = [
            self.root.join("keys"),
            self.root.join("keys").join(&public_key[..1]),
            self.root
                .join("keys")
                .join(&public_key[..1])
                .join(&public_key[1..3]),
        ];
        for d in &dirs {
            match src.kind(d) {
                Ok(Some(Kind::Dir)) => {}
                Ok(Some(Kind::Symlink)) => {
                    return err(format!(
                        "{} is a symbolic link; natsform does not follow links in the keystore\n  = help: replace it by the directory it points to",
                        shown(d)
                    ))
                }
                Ok(_) => return Ok(Found::Missing),
                Err(e) => return err(format!("reading {}: {e}", shown(d))),
            }
        }
        let path = dirs[2].join(format!("{public_key}.nk"));
        let bytes = match src.read(&path, MAX_SEED_FILE_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Found::Missing),
            Err(e) => {
                return err(format!(
                    "{}: {e}\n  = help: a keystore file must be a regular file (not a link) of at most 1 MiB",
                    shown(&path)
                ))
            }
        };
        let not_a_seed = || {
            ImportError(format!(
                "{} is not an nkey seed (contents not shown)\n  = help: nsc writes the 58-character seed alone; restore the file from a backup or remove it to import the key without its seed",
                shown(&path)
            ))
        };
        let text = String::from_utf8(bytes).map_err(|_| not_a_seed())?;
        // Go's base32 decoder skips line breaks, so nsc accepts them (facts §9.1).
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if text == public_key {
            return Ok(Found::Missing);
        }
        let kp = KeyPair::from_seed(&text).map_err(|_| not_a_seed())?;
        if kp.public_key() != public_key {
            return err(format!(
                "{} holds the seed of another key, not of {public_key} (contents not shown)\n  = help: the file name must be the public key of the seed inside; fix the keystore in a copy",
                shown(&path)
            ));
        }
        let kind = crate::keys::kind_of_public_key(&kp.public_key());
        if !matches!(
            kind,
            Some(KeyKind::Operator | KeyKind::Account | KeyKind::User)
        ) {
            return Err(not_a_seed());
        }
        Ok(Found::Seed(Box::new(kp)))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::load::parse;
    use crate::manifest::{Format, Manifest};
    use crate::plan::desired::desired;
    use crate::plan::keyref::KeyBook;

    fn serialise(m: &Manifest, format: Format) -> String {
        match format {
            Format::Toml => toml::to_string_pretty(m).unwrap(),
            Format::Yaml => serde_yaml::to_string(m).unwrap(),
        }
    }

    /// Every field of `examples/full` survives serialising and loading
    /// again: the same text the second time, and the same desired claims.
    #[test]
    fn the_full_example_round_trips_through_serialisation_in_both_syntaxes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full/natsform.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let original = parse(&path, Format::Toml, text).unwrap().manifest;
        let keys = KeyBook::new();
        for (format, name) in [(Format::Toml, "m.toml"), (Format::Yaml, "m.yaml")] {
            let once = serialise(&original, format);
            let back = parse(Path::new(name), format, once.clone())
                .unwrap_or_else(|e| panic!("{name} does not load back: {e}\n{once}"))
                .manifest;
            assert_eq!(serialise(&back, format), once, "{name}");
            assert_eq!(desired(&back, &keys), desired(&original, &keys), "{name}");
        }
    }

    fn env_of<'a>(vars: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    /// nsc's own locations, in nsc's order, each saying where it came from.
    #[test]
    fn locate_uses_nscs_locations_in_nscs_order() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().display().to_string();
        let env = [("HOME", h.clone())];
        // Nothing there: the error names both places looked in.
        let e = super::locate(None, None, &env_of(&env)).unwrap_err().0;
        assert!(
            e.contains(".local/share/nats/nsc/stores") && e.contains(".nsc/nats"),
            "{e}"
        );
        // The legacy directories, when the XDG ones are absent.
        std::fs::create_dir_all(home.path().join(".nsc/nats")).unwrap();
        std::fs::create_dir_all(home.path().join(".nkeys")).unwrap();
        let d = super::locate(None, None, &env_of(&env)).unwrap();
        assert_eq!(d.stores, home.path().join(".nsc/nats"));
        assert_eq!(d.keys, home.path().join(".nkeys"));
        assert_eq!(d.stores_origin, "nsc's legacy location");
        // The XDG ones win once they exist ($XDG_DATA_HOME when set).
        let data = home.path().join("data");
        std::fs::create_dir_all(data.join("nats/nsc/stores")).unwrap();
        std::fs::create_dir_all(data.join("nats/nsc/keys")).unwrap();
        let env = [
            ("HOME", h.clone()),
            ("XDG_DATA_HOME", data.display().to_string()),
        ];
        let d = super::locate(None, None, &env_of(&env)).unwrap();
        assert_eq!(d.stores, data.join("nats/nsc/stores"));
        assert_eq!(d.keys_origin, "nsc's default");
        // $NKEYS_PATH names the keystore; flags beat everything.
        let env = [("HOME", h), ("NKEYS_PATH", "/k".to_string())];
        let d = super::locate(None, None, &env_of(&env)).unwrap();
        assert_eq!(
            (d.keys.as_path(), d.keys_origin.as_str()),
            (Path::new("/k"), "$NKEYS_PATH")
        );
        let d = super::locate(Some("s".into()), Some("k".into()), &env_of(&env)).unwrap();
        assert_eq!(
            (d.stores_origin.as_str(), d.keys_origin.as_str()),
            ("--store", "--keys")
        );
    }

    /// Defaults are left out, so an imported manifest reads like a
    /// hand-written one.
    #[test]
    fn defaults_are_not_written() {
        let text = "[operators.O.accounts.A.users.u]\n";
        let m = parse(Path::new("m.toml"), Format::Toml, text.into())
            .unwrap()
            .manifest;
        assert_eq!(
            serialise(&m, Format::Toml),
            "[operators.O.accounts.A.users.u]\n"
        );
    }
}
