//! `plan --base REF [--head REF]`: the plan that merging would execute.
//! The manifest comes from the working tree (or from `--head`); the lock,
//! the store and the vault from the tree at `REF`, which is what `apply`
//! reads after the merge. Only git objects and the manifest are read.

use std::path::Path;

use crate::manifest;
use crate::plan::{MergeBase, Revision};
use crate::source::git::Repo;
use crate::source::Source;
use crate::workspace::{Workspace, DEFAULT_STORE_DIR, LOCK_FILE};

/// The workspace of the merge, and what was compared (the views render
/// it: [`crate::plan::Plan::base`]).
pub fn open(path: &Path, base: &str, head: Option<&str>) -> anyhow::Result<(Workspace, MergeBase)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let repo = Repo::discover(dir)?;
    let rel = repo.relative(path)?;
    let base_tree = repo.tree(base)?;
    let (loaded, from) = match head {
        None => (manifest::load(path)?, None),
        Some(h) => {
            let head_tree = repo.tree(h)?;
            let loaded = manifest::load_from(&head_tree, &rel)?;
            let from = Revision {
                name: h.to_string(),
                commit: head_tree.short_id().to_string(),
            };
            (loaded, Some(from))
        }
    };
    let project = rel.parent().unwrap_or(Path::new(""));
    let store_dir = loaded
        .manifest
        .store
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE_DIR.to_string());
    let ws = Workspace::open_in(&base_tree, loaded, project)?;
    // `open_in` refused anything odd on the way; these only exist or not.
    let has = |p: &Path| base_tree.kind(p).ok().flatten().is_some();
    let merge = MergeBase {
        manifest: rel.to_string_lossy().into_owned(),
        head: from,
        base: Revision {
            name: base.to_string(),
            commit: base_tree.short_id().to_string(),
        },
        base_has_lock: has(&project.join(LOCK_FILE)),
        base_has_store: has(&project.join(&store_dir)),
    };
    Ok((ws, merge))
}
