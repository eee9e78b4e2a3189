//! Everything natsform reads before it plans: the manifest (validated), the
//! lock, and the store, with paths resolved against the manifest's directory.
//! Reading needs no secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::keys::Lock;
use crate::manifest::remembered::{ParsedCache, Used};
use crate::manifest::{self, Loaded};
use crate::plan::{self, DesiredObject, DesiredState, Existing, KeyBook, Plan};
use crate::safepath;
use crate::source::{Source, WorkDir};
use crate::store::Store;
use crate::tree::ObjectId;
use crate::verified::{self, Remembered};

/// Default file names next to the manifest.
pub const LOCK_FILE: &str = "natsform.lock";
pub const DEFAULT_STORE_DIR: &str = "store";
pub const DEFAULT_VAULT_DIR: &str = "vault";

/// The current unix time, or `NATSFORM_NOW` (unix seconds) when set: plans
/// depend on the clock only through expiry, and tests and reproducible CI
/// runs pin it. Each command reads it once and passes it on, so the plan
/// it shows and what it applies agree on "now".
pub fn now() -> i64 {
    if let Some(t) = std::env::var("NATSFORM_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The manifest, lock and store of one project.
pub struct Workspace {
    pub loaded: Loaded,
    pub lock_path: PathBuf,
    pub lock: Lock,
    /// The lock file's text as read (empty when there is none): what a
    /// saved plan's fingerprint covers.
    lock_text: String,
    pub store: Store,
    pub vault_dir: PathBuf,
    pub existing: BTreeMap<ObjectId, Existing>,
    /// Keys the lock binds for the manifest whose seed file is missing or
    /// damaged (address → problem); found without any secret.
    pub seed_problems: BTreeMap<String, String>,
    /// Every seed file in the vault (public key) and who its age header
    /// says it is sealed to (`None`: damaged or not a regular file).
    pub sealed: BTreeMap<String, Option<crate::keys::Sealed>>,
    /// Every account's bundle of user seeds (`<ACCOUNT>.users.age`) in the
    /// vault, and who its age header says it is sealed to.
    pub bundles: BTreeMap<String, Option<crate::keys::Sealed>>,
    /// The user keys each bundle's index (`<ACCOUNT>.users.keys`) lists,
    /// for the bundles whose index reads.
    pub bundle_users: BTreeMap<String, Vec<String>>,
    /// The keys the manifest names ([`plan::required_keys`]), computed
    /// once while the store was read.
    required: plan::RequiredKeys,
    /// The plan's vault part and the number of seeds sealed to a removed
    /// recipient ([`vault_plan`]): what every plan of this workspace sets,
    /// computed once while the store was read.
    vault: (plan::vault::VaultPlan, usize),
    /// Desired objects for the lock's keys, computed while the store was
    /// read; taken by the first [`Workspace::plan`].
    prepared: Mutex<Option<BTreeMap<ObjectId, DesiredObject>>>,
    /// How the store's signatures were checked.
    verification: plan::existing::Verification,
    /// The verified-signature cache of this project, when one is used
    /// ([`Workspace::open_cached`]), and what it remembered.
    cache: Option<(verified::Cache, Remembered)>,
    /// What the CLI should tell about the cache (a note, never an error).
    cache_notes: Vec<String>,
    /// The parsed-manifest cache entry of this manifest, when `plan` uses
    /// it, and whether the model came from it.
    parsed: Option<(ParsedCache, Used)>,
}

/// What [`Workspace::open_cached`] read before the manifest was parsed.
#[derive(Default)]
struct Read {
    /// The lock ([`read_lock`]).
    lock: Option<Result<(Lock, String)>>,
    /// The manifest's validation, when done already.
    validated: Option<Result<(), manifest::ManifestErrors>>,
}

/// A store read and decoded, or why not.
type StoreRead = std::io::Result<(BTreeMap<ObjectId, Existing>, plan::existing::Verification)>;

/// Reads and decodes `store`, skipping the Ed25519 check of what
/// `remembered` holds.
fn read_store(src: &dyn Source, store: &Store, remembered: &Remembered) -> StoreRead {
    store
        .read_each(src, &|id, token| {
            plan::existing::decode_stored(id, token, remembered)
        })
        .map(plan::existing::tally)
}

/// [`read_store`] of the store in its default place, when no link leads
/// there (checked as for the manifest's store).
fn read_default_store(src: &dyn Source, base: &Path, remembered: &Remembered) -> Option<StoreRead> {
    let store = Store::new(base.join(DEFAULT_STORE_DIR));
    safepath::check_no_links_in(src, base, store.root()).ok()?;
    Some(read_store(src, &store, remembered))
}

/// The manifest at `path`, its model from the parsed-manifest cache when
/// `parsing` allows it, with that cache entry and what it gave.
fn load_manifest(
    path: &Path,
    parsing: Parsing,
) -> (
    Result<Loaded, manifest::ManifestErrors>,
    Option<(ParsedCache, Used)>,
) {
    match parsing {
        Parsing::Always => (manifest::load(path), None),
        Parsing::Remembered => match ParsedCache::for_manifest(path) {
            Some(cache) => {
                let (loaded, used) = manifest::load::load_remembered(path, &cache);
                (loaded, Some((cache, used)))
            }
            None => (manifest::load(path), None),
        },
        Parsing::Refreshed => (
            manifest::load(path),
            ParsedCache::for_manifest(path).map(|c| (c, Used::Miss)),
        ),
    }
}

/// The project's lock (`natsform.lock` in `base`) and its text, after
/// checking that no link leads to it.
fn read_lock(src: &dyn Source, base: &Path) -> Result<(Lock, String)> {
    let lock_path = base.join(LOCK_FILE);
    safepath::check_no_links_in(src, base, &lock_path)?;
    Ok(Lock::load_from(src, &lock_path)?)
}

/// What [`Workspace::open_cached`] made of the manifest while the store
/// in its default place was read.
enum Early {
    /// The manifest uses that store: everything else, or the first error.
    Front(Box<Result<Front>>),
    /// It names another store: the lock and the validation so far.
    Later(Result<(Lock, String)>, Result<(), manifest::ManifestErrors>),
}

/// The directories of a project the manifest names, checked.
#[derive(Clone)]
struct Paths {
    store_dir: String,
    vault_name: String,
}

impl Paths {
    /// `store` and `vault` of `loaded`: each one directory inside the
    /// project, apart, and no link on the way to either. `validated` holds
    /// the manifest's validation if it was done already (else it is done
    /// here when needed, and kept).
    fn check(
        src: &dyn Source,
        loaded: &Loaded,
        base: &Path,
        validated: &mut Option<Result<(), manifest::ManifestErrors>>,
    ) -> Result<Paths> {
        // A store an apply was rewriting in place is not read until that
        // apply is finished (`crate::journal`); every way of opening a
        // workspace comes through here.
        crate::journal::refuse_interrupted(src, base)?;
        let m = &loaded.manifest;
        let store_dir = m.store.as_deref().unwrap_or(DEFAULT_STORE_DIR);
        let vault_name = m.vault.as_deref().unwrap_or(DEFAULT_VAULT_DIR);
        if [store_dir, vault_name]
            .iter()
            .any(|d| safepath::project_dir_problem(d).is_some())
            || safepath::store_vault_overlap(store_dir, vault_name).is_some()
        {
            // Validation says which, with file and line; nothing is read first.
            validated
                .take()
                .unwrap_or_else(|| manifest::validate(loaded))?;
            anyhow::bail!(
                "`store` and `vault` must be separate directories inside the manifest's directory"
            );
        }
        // Everything natsform reads or writes lies under these three paths;
        // none of them, nor a directory between them and the project
        // directory, may be a symbolic link.
        for p in [base.join(store_dir), base.join(vault_name)] {
            safepath::check_no_links_in(src, base, &p)?;
        }
        Ok(Paths {
            store_dir: store_dir.to_string(),
            vault_name: vault_name.to_string(),
        })
    }
}

/// Everything of a workspace but the store's contents: paths, lock, the
/// desired objects and what the vault holds.
struct Front {
    store: Store,
    vault_dir: PathBuf,
    lock_path: PathBuf,
    lock: Lock,
    lock_text: String,
    prepared: BTreeMap<ObjectId, DesiredObject>,
    seed_problems: BTreeMap<String, String>,
    sealed: BTreeMap<String, Option<crate::keys::Sealed>>,
    bundles: BTreeMap<String, Option<crate::keys::Sealed>>,
    bundle_users: BTreeMap<String, Vec<String>>,
    required: plan::RequiredKeys,
    vault: (plan::vault::VaultPlan, usize),
}

impl Front {
    /// [`Paths::check`], then [`Front::after`]: every error in the order
    /// `open_in` gives them.
    fn of(
        src: &dyn Source,
        loaded: &Loaded,
        base: &Path,
        lock: Option<Result<(Lock, String)>>,
        mut validated: Option<Result<(), manifest::ManifestErrors>>,
    ) -> Result<Front> {
        let paths = Paths::check(src, loaded, base, &mut validated)?;
        Front::after(src, loaded, base, paths, lock, validated)
    }

    /// The lock (read now unless `lock` holds it), the manifest's
    /// validation (done now unless `validated` holds it), then the desired
    /// objects beside the vault's examination.
    fn after(
        src: &dyn Source,
        loaded: &Loaded,
        base: &Path,
        paths: Paths,
        lock: Option<Result<(Lock, String)>>,
        validated: Option<Result<(), manifest::ManifestErrors>>,
    ) -> Result<Front> {
        let (lock, lock_text) = match lock {
            Some(lock) => lock?,
            None => read_lock(src, base)?,
        };
        validated.unwrap_or_else(|| manifest::validate(loaded))?;
        let vault_dir = base.join(&paths.vault_name);
        let (prepared, (seed_problems, sealed, bundles, bundle_users, required, vault)) =
            rayon::join(
                || plan::desired(&loaded.manifest, lock.bindings()),
                || {
                    // One read of each seed file gives both its problems and
                    // who it is sealed to; the manifest's keys and its
                    // accounts' users are listed once for both the seed
                    // problems and the plan's vault part.
                    let (examined, bundles) = examine_vault(src, &vault_dir);
                    let required = plan::required_keys(&loaded.manifest);
                    let keys = lock.bindings();
                    let accounts = plan::vault::account_users(&loaded.manifest, keys, keys);
                    let problems = seed_problems(
                        src,
                        &lock,
                        &vault_dir,
                        &paths.vault_name,
                        &examined,
                        &bundles,
                        &required,
                        &accounts,
                    );
                    let sealed: BTreeMap<String, Option<crate::keys::Sealed>> =
                        examined.into_iter().map(|(k, e)| (k, e.sealed)).collect();
                    let bundle_sealed: BTreeMap<String, Option<crate::keys::Sealed>> = bundles
                        .iter()
                        .map(|(k, e)| (k.clone(), e.sealed.clone()))
                        .collect();
                    let bundle_users: BTreeMap<String, Vec<String>> = bundles
                        .into_iter()
                        .filter_map(|(k, e)| Some((k, e.users?)))
                        .collect();
                    let vault = vault_plan(
                        &loaded.manifest,
                        &lock,
                        &required,
                        &accounts,
                        &sealed,
                        &bundle_sealed,
                        &bundle_users,
                    );
                    (
                        problems,
                        sealed,
                        bundle_sealed,
                        bundle_users,
                        required,
                        vault,
                    )
                },
            );
        Ok(Front {
            store: Store::new(base.join(&paths.store_dir)),
            vault_dir,
            lock_path: base.join(LOCK_FILE),
            lock,
            lock_text,
            prepared,
            seed_problems,
            sealed,
            bundles,
            bundle_users,
            required,
            vault,
        })
    }
}

/// How [`Workspace::open_cached`] checks the store's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Skip the Ed25519 check of JWTs whose exact bytes an earlier run
    /// verified (the project's cache in the user's cache directory).
    Remembered,
    /// Verify every signature (`plan --verify-all`); the cache can still
    /// be refreshed afterwards.
    VerifyAll,
}

/// Whether the manifest's model may come from the parsed-manifest cache
/// ([`crate::manifest::remembered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsing {
    /// Parse it; the cache is neither read nor written (`creds`).
    Always,
    /// Take the model remembered for exactly this text, else parse it and
    /// let [`Workspace::remember_parsed`] remember it (`plan`).
    Remembered,
    /// Parse it, and let [`Workspace::remember_parsed`] make the entry
    /// hold that parse (`apply` and `plan --live`: what they sign never
    /// rests on the cache, and the first plan after them reads the model
    /// back; `plan --verify-all`: nothing remembered is trusted).
    Refreshed,
}

impl Workspace {
    /// Loads and validates the manifest at `path`, then reads lock and store.
    /// Every stored signature is verified (no cache is read or written).
    pub fn open(path: &Path) -> Result<Workspace> {
        let loaded = manifest::load(path)?;
        let base = loaded.base_dir();
        Workspace::open_in(&WorkDir, loaded, &base)
    }

    /// [`Workspace::open`] with the project's verified-signature cache
    /// ([`crate::verified`]): with [`Signatures::Remembered`], a stored JWT
    /// whose exact bytes an earlier run verified is not verified again.
    /// [`Workspace::remember_verified`] writes the cache back. A missing,
    /// unusable or unlocatable cache only means every signature is checked.
    /// `parsing` says whether the manifest's model may come from the
    /// parsed-manifest cache.
    pub fn open_cached(path: &Path, signatures: Signatures, parsing: Parsing) -> Result<Workspace> {
        // The manifest's directory is known before the manifest is parsed,
        // and the cache and the lock depend on nothing else: they are read
        // while the manifest is parsed (both are large for 100,000 users).
        // Their errors still come in the order `open_in` gives them.
        let base = crate::runlock::project_dir(path);
        // So is the store in its default place, which most manifests use:
        // it is read (never through a link) and decoded meanwhile too, and
        // used only if the manifest names that place. The manifest is
        // validated as soon as it is parsed, and its desired objects and
        // the vault are looked at while the store is still being read.
        let (front, (cache, notes, store)) = rayon::join(
            || {
                let ((loaded, parsed), lock) = rayon::join(
                    || {
                        let (loaded, parsed) = load_manifest(path, parsing);
                        let loaded = loaded.map(|loaded| {
                            let validated = manifest::validate(&loaded);
                            (loaded, validated)
                        });
                        (loaded, parsed)
                    },
                    || read_lock(&WorkDir, &base),
                );
                let (loaded, validated) = loaded?;
                debug_assert_eq!(loaded.base_dir(), base);
                if loaded
                    .manifest
                    .store
                    .as_deref()
                    .unwrap_or(DEFAULT_STORE_DIR)
                    != DEFAULT_STORE_DIR
                {
                    // Read as `open_in` reads it, once the paths are checked.
                    return Ok((loaded, Early::Later(lock, validated), parsed));
                }
                let front = Front::of(&WorkDir, &loaded, &base, Some(lock), Some(validated));
                Ok::<_, manifest::ManifestErrors>((loaded, Early::Front(Box::new(front)), parsed))
            },
            || {
                let mut notes = Vec::new();
                let cache = verified::Cache::for_project(&base).map(|cache| {
                    let remembered = match signatures {
                        Signatures::VerifyAll => Remembered::default(),
                        Signatures::Remembered => {
                            let (remembered, note) = cache.load();
                            notes.extend(note);
                            remembered
                        }
                    };
                    (cache, remembered)
                });
                let empty = Remembered::default();
                let remembered = cache.as_ref().map_or(&empty, |(_, r)| r);
                let store = read_default_store(&WorkDir, &base, remembered);
                (cache, notes, store)
            },
        );
        let (loaded, front, parsed) = front?;
        let empty = Remembered::default();
        let remembered = cache.as_ref().map_or(&empty, |(_, r)| r);
        let mut ws = match front {
            Early::Front(front) => {
                let front = (*front)?;
                let store_read = match store {
                    Some(read) => read,
                    // A link led there while it was read: checked since.
                    None => read_store(&WorkDir, &front.store, remembered),
                };
                Workspace::assemble(&WorkDir, loaded, front, store_read)?
            }
            Early::Later(lock, validated) => {
                let read = Read {
                    lock: Some(lock),
                    validated: Some(validated),
                };
                Workspace::open_with(&WorkDir, loaded, &base, remembered, read)?
            }
        };
        ws.cache = cache;
        ws.cache_notes = notes;
        if let Some((_, Used::Ignored(note))) = &parsed {
            ws.cache_notes.push(note.clone());
        }
        ws.parsed = parsed;
        Ok(ws)
    }

    /// Validates `loaded` and reads the lock, store and vault that belong
    /// to it from `src`, in the project directory `base` (a path of `src`).
    /// `plan --base` reads them from a git tree, the manifest from
    /// elsewhere.
    pub fn open_in(src: &dyn Source, loaded: Loaded, base: &Path) -> Result<Workspace> {
        Workspace::open_in_remembering(src, loaded, base, &Remembered::default())
    }

    /// [`Workspace::open_in`], skipping the Ed25519 check of stored JWTs
    /// whose digest `remembered` holds.
    pub fn open_in_remembering(
        src: &dyn Source,
        loaded: Loaded,
        base: &Path,
        remembered: &Remembered,
    ) -> Result<Workspace> {
        Workspace::open_with(src, loaded, base, remembered, Read::default())
    }

    /// [`Workspace::open_in_remembering`], using what `read` holds
    /// already.
    fn open_with(
        src: &dyn Source,
        loaded: Loaded,
        base: &Path,
        remembered: &Remembered,
        read: Read,
    ) -> Result<Workspace> {
        let mut validated = read.validated;
        let paths = Paths::check(src, &loaded, base, &mut validated)?;
        // The manifest side (validation, desired claims) and the store side
        // (reading, verifying) are independent: on a large tree, overlapping
        // them saves most of the manifest's time. The store is read only
        // once its path is checked.
        let (front, store_side) = rayon::join(
            || Front::after(src, &loaded, base, paths.clone(), read.lock, validated),
            || read_store(src, &Store::new(base.join(&paths.store_dir)), remembered),
        );
        Workspace::assemble(src, loaded, front?, store_side)
    }

    /// The workspace of `loaded`, `front` and the store as read: the
    /// store's error comes after every other.
    fn assemble(
        src: &dyn Source,
        loaded: Loaded,
        front: Front,
        store_side: StoreRead,
    ) -> Result<Workspace> {
        let Front {
            store,
            vault_dir,
            lock_path,
            lock,
            lock_text,
            prepared,
            seed_problems,
            sealed,
            bundles,
            bundle_users,
            required,
            vault,
        } = front;
        let (existing, verification) = store_side.with_context(|| {
            format!("reading the store at {}", src.shown(store.root()).display())
        })?;
        Ok(Workspace {
            loaded,
            lock_path,
            lock,
            lock_text,
            store,
            vault_dir,
            existing,
            seed_problems,
            sealed,
            bundles,
            bundle_users,
            required,
            vault,
            prepared: Mutex::new(Some(prepared)),
            verification,
            cache: None,
            cache_notes: Vec::new(),
            parsed: None,
        })
    }

    /// How the store's signatures were checked: JWTs read, verified now,
    /// taken as verified from the cache.
    pub fn verification(&self) -> &plan::existing::Verification {
        &self.verification
    }

    /// The cache of bundles of user seeds this user's applies sealed,
    /// beside the verified-signature cache and only when that is used.
    pub fn bundle_cache(&self) -> Option<verified::Cache> {
        let (cache, _) = self.cache.as_ref()?;
        Some(cache.of_kind(verified::Kind::Bundles))
    }

    /// Forgets every bundle remembered as checked (`plan --verify-all`).
    pub fn forget_checked_bundles(&self) -> Result<bool, String> {
        self.bundle_cache().map_or(Ok(false), |c| c.forget())
    }

    /// Notes about the cache (ignored as untrustworthy or damaged), for
    /// the CLI to print on stderr.
    pub fn cache_notes(&self) -> &[String] {
        &self.cache_notes
    }

    /// Makes the project's cache hold exactly the digests of the store's
    /// JWTs whose signatures verified in this run or were remembered, when
    /// opened with [`Workspace::open_cached`]. `Ok(false)` when nothing was
    /// written (no cache, or no change); an error is for a note only.
    pub fn remember_verified(&self) -> Result<bool, String> {
        match &self.cache {
            Some((cache, _)) => cache.save(&self.verification.digests),
            None => Ok(false),
        }
    }

    /// Remembers the manifest's model in the parsed-manifest cache when it
    /// was parsed in this run ([`Parsing::Remembered`] or
    /// [`Parsing::Refreshed`]): the next plan of the same text reads it
    /// back. `Ok(false)` when nothing was written; an error is for a note.
    pub fn remember_parsed(&self) -> Result<bool, String> {
        match &self.parsed {
            Some((cache, Used::Miss | Used::Ignored(_))) => {
                let l = &self.loaded;
                cache.save(l.format, &l.text, &l.manifest)
            }
            _ => Ok(false),
        }
    }

    /// Whether the manifest's model came from the parsed-manifest cache.
    pub fn manifest_remembered(&self) -> bool {
        matches!(self.parsed, Some((_, Used::Hit)))
    }

    /// After apply wrote the store: makes the cache hold the digests of the
    /// store as it is now, so the first plan after an apply verifies
    /// nothing apply wrote. The JWTs this apply signed (`tokens`, by
    /// object) verify by construction; the stored JWTs of the objects the
    /// plan acted on are gone or replaced, so their digests leave; every
    /// other digest is what this run verified or remembered, as a plan
    /// would save it. `Ok(false)` when nothing was written (no cache, or no
    /// change); an error is for a note only.
    pub fn remember_applied(
        &self,
        plan: &Plan,
        tokens: &BTreeMap<ObjectId, String>,
    ) -> Result<bool, String> {
        use rayon::prelude::*;
        let Some((cache, _)) = &self.cache else {
            return Ok(false);
        };
        let mut gone: Vec<verified::Digest> = plan
            .actions
            .par_iter()
            .filter_map(|a| self.existing.get(&a.id))
            .map(|e| verified::digest(&e.token))
            .collect();
        gone.par_sort_unstable();
        let written: Vec<&String> = tokens.values().collect();
        let mut digests: Vec<verified::Digest> =
            written.par_iter().map(|t| verified::digest(t)).collect();
        digests.extend(
            self.verification
                .digests
                .iter()
                .filter(|d| gone.binary_search(d).is_err()),
        );
        cache.save(&digests)
    }

    /// Verifies, ignoring the cache, every stored JWT whose content apply
    /// relies on for this plan: the stored JWT of each object the plan acts
    /// on (its revocations, `iat`, subject and deletions flow into what
    /// apply signs and sends) and of each of its ancestors (the operator
    /// and account above it). Stored JWTs apply pushes unchanged are
    /// verified by `deploy::check_chain`. Only JWTs taken from the cache are
    /// checked again: the others were verified when the store was read.
    ///
    /// No stored JWT of an object acted on is exempt, not even a user's that
    /// is only re-issued under the same key: its subject decides whether the
    /// plan replaces the user (and revokes the old key) or re-issues it, so a
    /// forged subject listed by a poisoned cache could keep a leaked key
    /// from being revoked.
    /// Returns how many were checked again.
    pub fn verify_relied_on(&self, plan: &Plan) -> Result<usize> {
        self.verify_chains(plan.actions.iter().map(|a| &a.id))
    }

    /// Verifies, ignoring the cache, the stored JWTs of `ids` and of each
    /// one's operator and account (as [`Workspace::verify_relied_on`] does
    /// for a plan's actions): what `creds` prints and what decides whether
    /// the user has pending changes. Returns how many were checked again.
    pub fn verify_chains<'a>(&self, ids: impl IntoIterator<Item = &'a ObjectId>) -> Result<usize> {
        let Some((cache, remembered)) = &self.cache else {
            return Ok(0);
        };
        if remembered.is_empty() {
            return Ok(0);
        }
        let mut relied: BTreeSet<ObjectId> = BTreeSet::new();
        for id in ids {
            relied.insert(ObjectId::operator(&id.operator));
            if let Some(account) = id.account_id() {
                relied.insert(account);
            }
            relied.insert(id.clone());
        }
        use rayon::prelude::*;
        let relied: Vec<&ObjectId> = relied.iter().collect();
        // (checked again, the first failure: file and why)
        let outcomes: Vec<Result<(), (String, String)>> = relied
            .par_iter()
            .filter_map(|id| {
                let e = self.existing.get(*id)?;
                e.decoded.as_ref().ok()?;
                if !remembered.contains(&verified::digest(&e.token)) {
                    return None;
                }
                Some(
                    crate::claims::verify_envelope(&e.token)
                        .map(|_| ())
                        .map_err(|problem| (src_path(&self.store, id), problem.to_string())),
                )
            })
            .collect();
        if let Some(Err((path, problem))) = outcomes.iter().find(|o| o.is_err()) {
            anyhow::bail!(
                "{path} does not verify ({problem}), yet the verification cache {} lists its exact bytes as verified: the cache was written by someone else or is damaged; nothing was changed\n  = help: run `natsform plan --verify-all` (it checks every signature, shows what must be re-issued and rewrites the cache), or delete that file",
                crate::safepath::escape_line(&cache.path().display().to_string()),
            );
        }
        Ok(outcomes.len())
    }

    /// Key bindings from the lock, restricted to what the manifest still names.
    pub fn key_book(&self) -> KeyBook {
        self.lock
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .collect()
    }

    /// Desired claims with the given key bindings, revocations reconciled
    /// against the store.
    pub fn desired(&self, keys: &KeyBook) -> DesiredState {
        plan::desired_state(
            &self.loaded.manifest,
            keys,
            &self.existing,
            self.lock.revocations(),
        )
    }

    /// The manifest, lock and store a plan is computed from, hashed: its
    /// fingerprint, and the digests a saved plan keeps to say what changed.
    pub fn snapshot(&self) -> plan::saved::Snapshot {
        let files = self
            .existing
            .iter()
            .map(|(id, jwt)| {
                let path = self.store.path_of(id);
                let rel = path.strip_prefix(self.store.root()).unwrap_or(&path);
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                (rel.join("/"), jwt.token.as_bytes())
            })
            .collect();
        plan::saved::Snapshot::new(
            self.loaded.text.as_bytes(),
            self.lock_text.as_bytes(),
            files,
        )
    }

    /// How a stale saved plan names the manifest, the lock and the store.
    pub fn input_names(&self) -> plan::saved::Names {
        let shown = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        plan::saved::Names {
            manifest: crate::safepath::escape_line(&shown(&self.loaded.path)).into_owned(),
            lock: LOCK_FILE.to_string(),
            store: crate::safepath::escape_line(
                self.loaded
                    .manifest
                    .store
                    .as_deref()
                    .unwrap_or(DEFAULT_STORE_DIR),
            )
            .into_owned(),
        }
    }

    /// The keys the manifest names (computed once, when opened).
    pub fn required_keys(&self) -> &plan::RequiredKeys {
        &self.required
    }

    /// The plan for the current manifest, lock and store at time `now`
    /// (unix seconds; read once per command, see [`now`]).
    pub fn plan(&self, now: i64) -> Plan {
        let (plan, state) = self.plan_and_state(now);
        drop_elsewhere(state);
        plan
    }

    /// [`Workspace::plan`] and the desired state it was computed from (for
    /// the lock's keys: apply, when it generates no key, signs from it).
    pub fn plan_and_state(&self, now: i64) -> (Plan, DesiredState) {
        // The lock's own map: a copy would cost as much again for 100,000 users.
        let keys = self.lock.bindings();
        let prepared = self.prepared.lock().ok().and_then(|mut p| p.take());
        let state = match prepared {
            Some(objects) => plan::complete_state(
                objects,
                &self.loaded.manifest,
                keys,
                &self.existing,
                self.lock.revocations(),
            ),
            None => self.desired(keys),
        };
        let plan = plan::plan(&plan::Inputs {
            state: &state,
            existing: &self.existing,
            keys,
            required: &self.required,
            now,
            reissue_before: crate::manifest::validate::reissue_window_secs(&self.loaded.manifest),
            recorded: self.lock.revocations(),
            seed_problems: &self.seed_problems,
        });
        let mut plan = plan;
        self.plan_vault(&mut plan);
        (plan, state)
    }
    /// Sets the plan's vault part ([`vault_plan`], computed when the
    /// workspace was opened).
    fn plan_vault(&self, plan: &mut Plan) {
        let (vault, removed) = &self.vault;
        plan.vault = vault.clone();
        if *removed > 0 {
            plan.warnings
                .push(plan::Warning::RecipientRemoved { seeds: *removed });
        }
    }

    /// The plan with what the live servers hold (`plan --live`, and every
    /// apply that pushes): [`Plan::live`] says, per operator, which
    /// accounts a server lacks, holds in an older or drifted version, or
    /// holds though natsform deleted it or never managed it.
    /// Unmanaged accounts are listed, not deleted: see
    /// [`Workspace::plan_live_pruning`].
    pub fn plan_live(&self, now: i64, live: &[crate::live::LiveState]) -> Plan {
        self.plan_live_pruning(now, live, false)
    }

    /// [`Workspace::plan_live`]; with `prune` (`--prune`), apply also
    /// deletes the accounts the servers hold that this manifest never
    /// managed, and the plan counts them as work.
    pub fn plan_live_pruning(
        &self,
        now: i64,
        live: &[crate::live::LiveState],
        prune: bool,
    ) -> Plan {
        let (plan, state) = self.plan_live_and_state(now, live, prune);
        drop_elsewhere(state);
        plan
    }

    /// [`Workspace::plan_live_pruning`] and the desired state it was
    /// computed from (see [`Workspace::plan_and_state`]).
    pub fn plan_live_and_state(
        &self,
        now: i64,
        live: &[crate::live::LiveState],
        prune: bool,
    ) -> (Plan, DesiredState) {
        let (mut plan, state) = self.plan_and_state(now);
        plan.live = plan::live::plan_live(&plan::live::LiveInputs {
            live,
            prune,
            state: &state,
            existing: &self.existing,
            actions: &plan.actions,
            deleted: self.lock.deleted_accounts(),
        });
        // The keys a drift's claims mention, named as the lock names them.
        let mentioned: BTreeSet<&str> = plan
            .live
            .iter()
            .flat_map(|lp| &lp.items)
            .filter_map(|i| i.drift.as_deref())
            .flat_map(|d| d.live.iter().chain(std::iter::once(&d.store)))
            .flat_map(|json| json.split('"'))
            .filter(|t| t.len() == 56)
            .collect();
        let named: Vec<(String, String)> = self
            .lock
            .iter()
            .filter(|(_, k)| mentioned.contains(k))
            .map(|(a, k)| (k.to_string(), a.to_string()))
            .collect();
        plan.key_names.extend(named);
        (plan, state)
    }
}

/// Drops `value` on a thread of its own: freeing the desired state of
/// 100,000 users takes ≈ 0.05 s that the caller need not wait for. Only
/// for values whose drop nothing observable depends on (memory only: no
/// file, lock or cache is written or released by it). When no thread can
/// be started, it is dropped here.
pub(crate) fn drop_elsewhere<T: Send + 'static>(value: T) {
    // On failure the closure, and with it `value`, is dropped here.
    let _ = std::thread::Builder::new()
        .name("natsform-drop".into())
        .spawn(move || drop(value));
}

/// How a message names a stored JWT's file.
fn src_path(store: &Store, id: &ObjectId) -> String {
    crate::safepath::escape_line(&store.path_of(id).display().to_string()).into_owned()
}

/// The plan's vault part: seeds sealed to other recipients than the
/// manifest declares, seeds no lock entry names, bundles whose users
/// change; and how many seeds stay sealed to a removed recipient in git
/// history (the plan warns when there are any). Depends only on what
/// opening the workspace read, so it is computed then, once.
#[allow(clippy::too_many_arguments)]
fn vault_plan(
    manifest: &manifest::Manifest,
    lock: &Lock,
    required: &plan::RequiredKeys,
    accounts: &[plan::vault::AccountUsers],
    sealed: &BTreeMap<String, Option<crate::keys::Sealed>>,
    bundles: &BTreeMap<String, Option<crate::keys::Sealed>>,
    bundle_users: &BTreeMap<String, Vec<String>>,
) -> (plan::vault::VaultPlan, usize) {
    let declared = crate::keys::Recipients::parse(&manifest.secrets.recipients)
        .ok()
        .filter(|r| !r.is_empty())
        .map(|r| r.sealed_shape());
    // The bindings this apply keeps: a key the manifest no longer names
    // leaves the lock in this apply, and every JWT it signed or named
    // is re-issued or deleted before the vault is tidied (last step).
    let kept: BTreeMap<String, String> = lock
        .iter()
        .filter(|(a, k)| sealed.contains_key(*k) && required.contains_key(*a))
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    let was: BTreeMap<String, String> = lock
        .iter()
        .filter(|(a, k)| sealed.contains_key(*k) && !required.contains_key(*a))
        .map(|(a, k)| (k.to_string(), a.to_string()))
        .collect();
    let mut vault = plan::vault::plan_vault(declared.as_ref(), sealed, &kept, &was);
    // Bundles of user seeds: one per account the lock binds and the
    // manifest keeps; rewritten when that account's users change.
    let kept_accounts: BTreeMap<String, String> = lock
        .iter()
        .filter(|(a, _)| a.starts_with("account.") && required.contains_key(*a))
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    let was: BTreeMap<String, String> = lock
        .iter()
        .filter(|(a, k)| bundles.contains_key(*k) && !kept_accounts.contains_key(*a))
        .map(|(a, k)| (k.to_string(), a.to_string()))
        .collect();
    vault.add_bundles(declared.as_ref(), bundles, &kept_accounts, &was);
    vault.bundles = accounts
        .iter()
        .filter_map(|a| {
            a.change(
                |k| bundle_users.get(k).map(Vec::as_slice),
                |k| sealed.contains_key(k),
            )
        })
        .filter(|c| !c.fresh)
        .collect();
    // Seeds, not files: a bundle holds every user seed of its account.
    let removed: usize = vault
        .reseal
        .iter()
        .filter(|r| r.removes_recipient)
        .map(|r| match r.bundle {
            true => bundle_users.get(&r.public_key).map_or(1, Vec::len),
            false => 1,
        })
        .sum();
    (vault, removed)
}

/// Keys the manifest needs and the lock binds (bring-your-own keys aside,
/// whose seeds natsform never holds) whose seed file is missing or damaged,
/// and bring-your-own keys that the lock binds to another address. A user's
/// seed is in its account's bundle, or in a file of its own (written before
/// bundles): the plan sees the bundle's presence and shape, not inside it.
#[allow(clippy::too_many_arguments)]
fn seed_problems(
    src: &dyn Source,
    lock: &Lock,
    vault_dir: &Path,
    vault_name: &str,
    examined: &BTreeMap<String, crate::keys::Examined>,
    bundles: &BTreeMap<String, crate::keys::Examined>,
    required: &plan::RequiredKeys,
    accounts: &[plan::vault::AccountUsers],
) -> BTreeMap<String, String> {
    use rayon::prelude::*;
    let vault = crate::keys::Vault::new(vault_dir);
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    let owners: BTreeMap<&str, &str> = lock.iter().map(|(a, k)| (k, a)).collect();
    for (addr, (_, byo)) in required {
        let Some(public) = byo else { continue };
        if let Some(other) = owners.get(public.as_str()).filter(|o| **o != addr) {
            problems.insert(
                addr.clone(),
                format!("its public_key is the key natsform.lock binds to `{other}`; every object needs a key of its own, so give this user its own public_key"),
            );
        }
    }
    let fix = |problem: String| {
        format!("{problem}\n    fix: restore the file from git history (`git log --diff-filter=D -- {vault_name}/` finds the commit that removed it), or rotate the key by changing its label in the manifest (what it signed is re-issued)")
    };
    let bound: Vec<(&String, &str)> = required
        .iter()
        .filter(|(_, (kind, byo))| byo.is_none() && *kind != crate::keys::KeyKind::User)
        .filter_map(|(addr, _)| lock.get(addr).map(|public| (addr, public)))
        .collect();
    let missing: Vec<(String, String)> = bound
        .into_par_iter()
        .filter_map(|(addr, public)| {
            // A file the vault listing did not find (missing, a link, not
            // a regular file) is looked at alone; it has nothing to read.
            let problem = match examined.get(public) {
                Some(e) => e.problem.clone(),
                None => vault.inspect_in(src, public),
            };
            problem.map(|problem| (addr.clone(), fix(problem)))
        })
        .collect();
    problems.extend(missing);
    // Users, one account at a time: its bundle is looked at once.
    let users: Vec<(String, String)> = accounts
        .par_iter()
        .flat_map_iter(|acc| {
            let bound: Vec<(&str, &str)> = acc
                .users
                .iter()
                .filter_map(|u| Some((u.address.as_str(), u.public_key.as_deref()?)))
                .collect();
            let mut out = Vec::new();
            if bound.is_empty() {
                return out;
            }
            // The bundle the account's users are in: the current key's, or
            // (the account's key is being replaced) the old key's.
            let home = acc
                .home(|k| bundles.contains_key(k))
                .or(acc.public_key.as_deref());
            // `None`: the bundle is missing; else its problem, if any.
            let bundle_problem: Option<Option<String>> = match home {
                Some(k) => match bundles.get(k) {
                    Some(e) => Some(e.problem.clone()),
                    None => match vault.examine_bundle_in(src, k).problem {
                        Some(p) if p.ends_with("is missing from the vault") => None,
                        p => Some(p),
                    },
                },
                None => Some(Some(format!(
                    "natsform.lock binds no key to its account `{}`, so its account's seed bundle cannot be found",
                    acc.account
                ))),
            };
            let listed: &[String] = home
                .and_then(|k| bundles.get(k))
                .and_then(|e| e.users.as_deref())
                .unwrap_or(&[]);
            let bundle_name = home
                .map(|k| format!("{k}{}", crate::keys::BUNDLE_SUFFIX))
                .unwrap_or_default();
            for (addr, public) in bound {
                // Its own seed file (written before bundles) comes first; a
                // link or other non-file there is never read (not listed).
                let problem = match (examined.get(public), &bundle_problem) {
                    (Some(e), _) => e.problem.clone(),
                    (None, Some(Some(p))) => Some(p.clone()),
                    (None, Some(None)) => (listed.binary_search_by(|k| k.as_str().cmp(public)).is_err())
                        .then(|| format!(
                            "its seed is not in its account's seed bundle {bundle_name} (its index {} does not list it) nor in a seed file of its own",
                            bundle_name.replace(crate::keys::BUNDLE_SUFFIX, crate::keys::INDEX_SUFFIX)
                        )),
                    (None, None) => Some(format!(
                        "its seed is missing from the vault: neither its account's seed bundle {bundle_name} nor a seed file {public}{} of its own is there",
                        crate::keys::vault_suffix()
                    )),
                };
                if let Some(problem) = problem {
                    out.push((addr.to_string(), fix(problem)));
                }
            }
            out
        })
        .collect();
    problems.extend(users);
    problems
}

/// Every seed file and every bundle of user seeds in the vault, read once
/// each (in parallel, without an identity): what is wrong with it and who
/// its age header says it is sealed to.
#[allow(clippy::type_complexity)]
fn examine_vault(
    src: &dyn Source,
    vault_dir: &Path,
) -> (
    BTreeMap<String, crate::keys::Examined>,
    BTreeMap<String, crate::keys::Examined>,
) {
    use rayon::prelude::*;
    let vault = crate::keys::Vault::new(vault_dir);
    rayon::join(
        || {
            vault
                .list_in(src)
                .into_par_iter()
                .map(|k| {
                    let examined = vault.examine_in(src, &k);
                    (k, examined)
                })
                .collect()
        },
        || {
            vault
                .list_bundles_in(src)
                .into_par_iter()
                .map(|k| {
                    let examined = vault.examine_bundle_in(src, &k);
                    (k, examined)
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{Parsing, Signatures, Workspace};
    use crate::safepath::store_vault_overlap as overlap_problem;
    use std::fs;
    use std::path::Path;

    const VALID: &str = "[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n[operators.O]\nsystem_account = \"SYS\"\n\n[operators.O.accounts.SYS.users.sys]\n\n[operators.O.accounts.A.signing_keys.main]\n\n[operators.O.accounts.A.users.U]\nsigner = \"main\"\n";

    /// A project with each of `faults`: an invalid manifest, a damaged
    /// lock, an unreadable store JWT, a linked vault, another store.
    fn project(dir: &Path, faults: &[&str]) -> std::path::PathBuf {
        let mut manifest = VALID.to_string();
        if faults.contains(&"invalid") {
            manifest = manifest.replace("signer = \"main\"", "signer = \"mian\"");
        }
        if faults.contains(&"other-store") {
            manifest = format!("store = \"jwts\"\n{manifest}");
        }
        let path = dir.join("natsform.toml");
        fs::write(&path, manifest).unwrap();
        if faults.contains(&"lock") {
            fs::write(dir.join("natsform.lock"), "version = [").unwrap();
        }
        if faults.contains(&"store") {
            let store = if faults.contains(&"other-store") {
                "jwts"
            } else {
                "store"
            };
            let users = dir.join(store).join("O/accounts/A/users");
            fs::create_dir_all(&users).unwrap();
            fs::write(
                dir.join(store).join("O/.nsc"),
                r#"{"managed":false,"name":"O","kind":"operator","version":"1"}"#,
            )
            .unwrap();
            fs::write(users.join("U.jwt"), b"\xff").unwrap();
        }
        #[cfg(unix)]
        if faults.contains(&"vault-link") {
            let outside = dir.join("outside");
            fs::create_dir_all(&outside).unwrap();
            std::os::unix::fs::symlink(&outside, dir.join("vault")).unwrap();
        }
        path
    }

    #[test]
    fn reading_while_parsing_gives_the_errors_of_reading_in_turn() {
        // The cache is only read here (a new temporary project has none).
        let faults = ["invalid", "lock", "store", "vault-link", "other-store"];
        // Every combination: the first error must be the same.
        for mask in 1..(1u32 << faults.len()) {
            let chosen: Vec<&str> = (0..faults.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| faults[i])
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = project(dir.path(), &chosen);
            let in_turn = Workspace::open(&path)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"));
            for (signatures, parsing) in [
                (Signatures::Remembered, Parsing::Remembered),
                (Signatures::VerifyAll, Parsing::Refreshed),
                (Signatures::Remembered, Parsing::Always),
            ] {
                let at_once = Workspace::open_cached(&path, signatures, parsing)
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"));
                assert_eq!(at_once, in_turn, "{chosen:?}");
            }
            if chosen != ["other-store"] {
                assert!(in_turn.is_err(), "{chosen:?}");
            }
        }
    }

    #[test]
    fn store_and_vault_must_not_contain_each_other() {
        assert_eq!(overlap_problem("store", "vault"), None);
        assert_eq!(overlap_problem("state/store", "state/vault"), None);
        assert_eq!(overlap_problem("store", "store-vault"), None);
        for (s, v) in [
            ("store", "store"),
            ("./store", "store/"),
            ("store", "store/demo/accounts/app"),
            ("Store", "store/x"),
            ("vault/jwts", "vault"),
        ] {
            assert!(overlap_problem(s, v).is_some(), "{s} {v}");
        }
    }

    #[test]
    fn drop_elsewhere_drops_the_value_off_the_calling_thread() {
        // A value that says on which thread it was dropped.
        struct Tell(std::sync::mpsc::Sender<std::thread::ThreadId>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.send(std::thread::current().id());
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        super::drop_elsewhere(Tell(tx));
        let dropped_on = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("dropped within 10 s");
        assert_ne!(dropped_on, std::thread::current().id());
    }
}
