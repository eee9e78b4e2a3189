//! `plan --base REF [--head REF]`: the plan that merging would execute.
//! The manifest comes from the working tree (or from `--head`); the lock,
//! the store and the vault from the tree at `REF`, which is what `apply`
//! reads after the merge. Only git objects and the manifest are read.

use std::path::Path;

use crate::manifest;
use crate::safepath::escape_line;
use crate::source::git::Repo;
use crate::source::Source;
use crate::workspace::{Workspace, DEFAULT_STORE_DIR, LOCK_FILE};

/// The workspace of the merge, and the header lines that say what was
/// compared.
pub fn open(
    path: &Path,
    base: &str,
    head: Option<&str>,
) -> anyhow::Result<(Workspace, Vec<String>)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let repo = Repo::discover(dir)?;
    let rel = repo.relative(path)?;
    let base_tree = repo.tree(base)?;
    let (loaded, from) = match head {
        None => (manifest::load(path)?, "the working tree".to_string()),
        Some(h) => {
            let head_tree = repo.tree(h)?;
            let loaded = manifest::load_from(&head_tree, &rel)?;
            (
                loaded,
                format!("{} ({})", escape_line(h), head_tree.short_id()),
            )
        }
    };
    let project = rel.parent().unwrap_or(Path::new(""));
    let store_dir = loaded
        .manifest
        .store
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE_DIR.to_string());
    let ws = Workspace::open_in(&base_tree, loaded, project)?;
    let at = format!("{} ({})", escape_line(base), base_tree.short_id());
    let mut header = vec![format!(
        "Plan of the merge: {} of {from} against the lock, store and vault at {at}.",
        escape_line(&rel.to_string_lossy())
    )];
    // `open_in` refused anything odd on the way; these only exist or not.
    let has = |p: &Path| base_tree.kind(p).ok().flatten().is_some();
    let (lock, store) = (
        has(&project.join(LOCK_FILE)),
        has(&project.join(&store_dir)),
    );
    match (lock, store) {
        (false, false) => header.push(format!(
            "Base {at} has no {LOCK_FILE} or store for this manifest: every object is created."
        )),
        (false, true) => header.push(format!(
            "Base {at} has a store but no {LOCK_FILE} for this manifest."
        )),
        (true, false) => header.push(format!(
            "Base {at} has a {LOCK_FILE} but no store for this manifest."
        )),
        (true, true) => {}
    }
    Ok((ws, header))
}
