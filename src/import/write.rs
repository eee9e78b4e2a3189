//! Writing an import: all or nothing.
//!
//! Everything is first written into a private staging directory beside
//! the target (`.natsform-import-…`): the manifest (serialised from the
//! model, then loaded back and compared), the lock, the store (the JWTs'
//! exact bytes) and the vault (each seed encrypted to the recipients). A
//! workspace is opened there and planned: the import stands only when the
//! plan is empty. Then the four are moved into place with renames that
//! never replace anything; a failure moves back what was already moved.

use std::path::{Path, PathBuf};

use super::{err, shown, ImportError, Imported, Result};
use crate::keys::{Recipients, Vault};
use crate::manifest::Format;
use crate::plan::reasons::Reason;
use crate::plan::views::text::text;
use crate::plan::ActionKind;
use crate::store::Store;
use crate::workspace::Workspace;
use crate::workspace::LOCK_FILE as LOCK_FILE_NAME;

const STORE_DIR: &str = "store";
const VAULT_DIR: &str = "vault";

/// What was written where.
#[derive(Debug)]
pub struct Written {
    pub manifest: PathBuf,
    pub lock: PathBuf,
    pub store: PathBuf,
    pub vault: PathBuf,
    pub jwts: usize,
    pub seeds: usize,
    /// Why `apply` will refuse until fixed (keys without seeds the plan
    /// needs), as the plan words them.
    pub blockers: Vec<String>,
    /// Objects the first apply will re-sign (only with `allow_resign`):
    /// same claims and keys, another signer.
    pub resigned: Vec<String>,
}

/// The manifest's text: a header, then the model serialised.
pub fn manifest_text(imported: &Imported, format: Format) -> Result<String> {
    let body = match format {
        Format::Toml => toml::to_string_pretty(&imported.manifest)
            .map_err(|e| ImportError(format!("serialising the manifest: {e}")))?,
        Format::Yaml => serde_yaml::to_string(&imported.manifest)
            .map_err(|e| ImportError(format!("serialising the manifest: {e}")))?,
    };
    Ok(format!(
        "# Imported from nsc by `natsform import nsc`. Keys keep their public keys\n# (natsform.lock); seeds are in the vault, encrypted to the recipients below.\n\n{body}"
    ))
}

/// Writes the import beside `manifest` (its directory is the project), or
/// refuses with nothing written. `now` is the plan's clock.
pub fn write_project(
    imported: &Imported,
    manifest: &Path,
    recipients: &[String],
    now: i64,
    allow_resign: bool,
) -> Result<Written> {
    let format = match crate::manifest::load::format_of(manifest) {
        Some(f) => f,
        None => {
            return err(format!(
                "{}: a manifest must end in .toml, .yaml or .yml",
                shown(manifest)
            ))
        }
    };
    let parsed = Recipients::parse(recipients).map_err(|e| ImportError(e.to_string()))?;
    if parsed.is_empty() {
        return err("no --recipient given\n  = help: name who can decrypt the seeds, as age's -r (age1…, ssh-ed25519 …); repeat for more");
    }
    // Targets are shown as the user named the manifest (`natsform.toml`,
    // not `./natsform.toml`); the staging directory needs a real path.
    let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let stage_in = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.clone()
    };
    let file_name = manifest.file_name().unwrap_or_default().to_os_string();
    let targets = [
        dir.join(&file_name),
        dir.join(LOCK_FILE_NAME),
        dir.join(STORE_DIR),
        dir.join(VAULT_DIR),
    ];
    refuse_existing(&targets)?;
    // A manifest in another syntax would make the directory ambiguous.
    let others: Vec<PathBuf> = ["natsform.toml", "natsform.yaml", "natsform.yml"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    refuse_existing(&others)?;
    let mut model = imported.manifest.clone();
    model.secrets.recipients = parsed.texts().map(str::to_string).collect();
    let imported_with = Imported {
        manifest: model,
        lock: imported.lock.clone(),
        jwts: imported.jwts.clone(),
        seeds: Vec::new(),
        notes: Vec::new(),
        counts: imported.counts,
    };
    let text = manifest_text(&imported_with, format)?;

    let staging = tempfile::Builder::new()
        .prefix(".natsform-import-")
        .tempdir_in(&stage_in)
        .map_err(|e| {
            ImportError(format!(
                "creating a staging directory in {}: {e}",
                shown(&dir)
            ))
        })?;
    let stage = staging.path();
    let io = |what: &str, e: &dyn std::fmt::Display| ImportError(format!("writing {what}: {e}"));
    let staged_manifest = stage.join(&file_name);
    crate::fsutil::write_atomic(&staged_manifest, text.as_bytes(), 0o644)
        .map_err(|e| io("the manifest", &e))?;
    // It must read back as the same model (serialised the same again).
    let loaded = crate::manifest::load(&staged_manifest)
        .map_err(|e| ImportError(format!("the imported manifest does not load back: {e}")))?;
    let again = Imported {
        manifest: loaded.manifest.clone(),
        ..imported_with
    };
    if manifest_text(&again, format)? != text {
        return err("the imported manifest does not read back as written (a natsform bug: please report it)");
    }
    imported
        .lock
        .save(&stage.join(LOCK_FILE_NAME))
        .map_err(|e| io("the lock", &e))?;
    let store = Store::new(stage.join(STORE_DIR));
    crate::fsutil::create_dir_all_private(&stage.join(STORE_DIR))
        .map_err(|e| io("the store", &e))?;
    for (id, token) in &imported.jwts {
        store.write(id, token).map_err(|e| io("the store", &e))?;
    }
    crate::fsutil::create_dir_all_private(&stage.join(VAULT_DIR))
        .map_err(|e| io("the vault", &e))?;
    let vault = Vault::new(stage.join(VAULT_DIR));
    write_seeds(&vault, imported, &parsed).map_err(|e| io("the vault", &e))?;

    // The point of importing: natsform takes the store over as it is.
    let ws = Workspace::open(&staged_manifest).map_err(|e| {
        ImportError(format!(
            "natsform cannot take this store over as it is, so nothing was written:\n{e}"
        ))
    })?;
    let plan = ws.plan(now);
    // A JWT signed by a key natsform keeps trusting but does not sign
    // with is re-signed, claims unchanged: harmless, but not "no changes".
    let resigns: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| {
            a.action == ActionKind::Reissue
                && !a.reasons.is_empty()
                && a.reasons
                    .iter()
                    .all(|r| matches!(r, Reason::SignerRotated { .. }))
        })
        .map(|a| a.address.clone())
        .collect();
    let only_resigns = resigns.len() == plan.actions.len()
        && plan.new_keys.is_empty()
        && plan.lock_records.is_empty();
    if !plan.is_empty() && only_resigns && !allow_resign {
        return err(format!(
            "{} {} signed by a key natsform keeps trusting but does not sign with (natsform signs every account of an operator with the operator's first signing key, and every user of a role with the role's key), so the first apply would re-sign {}: the same claims and keys, so the creds users hold keep working; nothing was written\n  = help: pass --allow-resign to import anyway, or re-sign {} with nsc first",
            resigns.join(", "),
            if resigns.len() == 1 { "is" } else { "are" },
            if resigns.len() == 1 { "it" } else { "them" },
            if resigns.len() == 1 { "it" } else { "them" },
        ));
    }
    if !plan.is_empty() && !only_resigns {
        let plan_text = text_plan(&plan);
        let shown_plan = crate::redact::redact_secrets(&plan_text);
        return err(format!(
            "natsform would change the imported store, so nothing was written:\n{shown_plan}\n  = help: this means the nsc store holds something natsform writes differently; please report it with the plan above"
        ));
    }
    let blockers = plan.blockers.iter().map(|b| b.to_string()).collect();

    refuse_existing(&targets)?;
    let staged = [
        staged_manifest,
        stage.join(LOCK_FILE_NAME),
        stage.join(STORE_DIR),
        stage.join(VAULT_DIR),
    ];
    // Store, vault and lock first, the manifest last: a manifest is what
    // makes the directory a project.
    let order = [2, 3, 1, 0];
    let mut moved: Vec<usize> = Vec::new();
    for i in order {
        if let Err(e) = rename_noreplace(&staged[i], &targets[i]) {
            for j in moved.into_iter().rev() {
                let _ = rename_noreplace(&targets[j], &staged[j]);
            }
            return err(format!("moving {} into place: {e}", shown(&targets[i])));
        }
        moved.push(i);
    }
    drop(staging);
    let [manifest, lock, store, vault] = targets;
    Ok(Written {
        manifest,
        lock,
        store,
        vault,
        jwts: imported.jwts.len(),
        seeds: imported.seeds.len(),
        blockers,
        resigned: resigns,
    })
}

/// The imported seeds as natsform keeps them: operator, account and
/// signing-key seeds one file per key, users' seeds in their account's
/// bundle (`<ACCOUNT>.users.age`).
fn write_seeds(
    vault: &Vault,
    imported: &Imported,
    recipients: &Recipients,
) -> crate::keys::Result<()> {
    let mut users: std::collections::BTreeMap<String, &crate::keys::KeyPair> =
        std::collections::BTreeMap::new();
    for kp in &imported.seeds {
        let public = kp.public_key();
        if crate::keys::kind_of_public_key(&public) == Some(crate::keys::KeyKind::User) {
            users.insert(public, kp);
        } else {
            vault.put(kp, recipients)?;
        }
    }
    let book = imported.lock.bindings();
    for account in crate::plan::vault::account_users(&imported.manifest, book, book) {
        let Some(account_key) = &account.public_key else {
            continue;
        };
        let mut seeds = crate::keys::UserSeeds::new();
        for u in &account.users {
            let found = u.public_key.as_ref().and_then(|k| users.get(k));
            if let Some(kp) = found {
                let seed = zeroize::Zeroizing::new(kp.seed().unwrap_or_default());
                if let Ok(copy) = crate::keys::KeyPair::from_seed(&seed) {
                    seeds.insert(copy);
                }
            }
        }
        if !seeds.is_empty() {
            let armored = crate::keys::seal_bundle(account_key, &seeds, recipients)?;
            let keys: Vec<String> = seeds.keys().map(str::to_string).collect();
            vault.write_bundle(account_key, Some(&armored), &keys)?;
        }
    }
    Ok(())
}

fn text_plan(plan: &crate::plan::Plan) -> String {
    text(plan, crate::plan::views::text::Style { color: false })
}

fn refuse_existing(targets: &[PathBuf]) -> Result<()> {
    for t in targets {
        if std::fs::symlink_metadata(t).is_ok() {
            return err(format!(
                "{} already exists; import never overwrites a project, so nothing was written\n  = help: run the import in an empty directory (or move the existing file away)",
                shown(t)
            ));
        }
    }
    Ok(())
}

/// `rename`, refusing to replace what is at `to` (an empty directory
/// would otherwise be replaced silently).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let f = CString::new(from.as_os_str().as_bytes())?;
        let t = CString::new(to.as_os_str().as_bytes())?;
        // SAFETY: both are valid NUL-terminated paths for the call's duration.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if std::fs::symlink_metadata(to).is_ok() {
            return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
        }
        std::fs::rename(from, to)
    }
}
