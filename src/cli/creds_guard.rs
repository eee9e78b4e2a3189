//! `creds --out DIR` inside a git working tree: a creds file holds the
//! user's seed in plaintext, so natsform writes one there only where git
//! ignores it and does not track it (`natsform init`'s `.gitignore` ignores
//! `creds/` and `*.creds`). Otherwise a later `git add -A` or `git commit -a`
//! would put a seed into the repository's history, where no rotation takes
//! it back out.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};
use git2::{ErrorCode, Repository, RepositoryOpenFlags};

use crate::safepath::escape_line;

/// Fails, before anything is written, when a file of `files` (all under
/// `dir`) would land in a git working tree unignored or tracked. Outside a
/// repository (or in a bare one) there is nothing to check.
pub fn refuse_unignored(dir: &Path, files: &[PathBuf]) -> Result<()> {
    let Some((real_dir, rest)) = resolve_existing(dir) else {
        return Ok(());
    };
    let repo = match Repository::open_ext(&real_dir, RepositoryOpenFlags::FROM_ENV, &[] as &[&Path])
    {
        Ok(r) => r,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
        Err(e) => bail!(
            "creds --out: {} looks like it is inside a git repository that cannot be read ({}); nothing was written\n  = help: write the creds outside the repository",
            escape_line(&dir.display().to_string()),
            escape_line(e.message())
        ),
    };
    let Some(workdir) = repo.workdir().and_then(|w| w.canonicalize().ok()) else {
        return Ok(());
    };
    let index = repo.index().map_err(|e| {
        anyhow::anyhow!(
            "creds --out: cannot read the index of the git repository at {} ({}), so whether git tracks the creds files is unknown; nothing was written\n  = help: write the creds outside the repository",
            escape_line(&workdir.display().to_string()),
            escape_line(e.message())
        )
    })?;
    for file in files {
        let Ok(below) = file.strip_prefix(dir) else {
            continue;
        };
        let full = real_dir.join(&rest).join(below);
        let Ok(rel) = full.strip_prefix(&workdir) else {
            continue; // DIR resolved outside this working tree
        };
        // The temporary file written beside it first holds the seed too.
        let temp = rel.with_file_name(format!("{}0.tmp", crate::fsutil::TEMP_PREFIX));
        let ignored = |p: &Path| repo.is_path_ignored(p).unwrap_or(false);
        let tracked = index.get_path(rel, 0).is_some();
        let what = if tracked {
            "tracks that file"
        } else if !ignored(rel) {
            "does not ignore it"
        } else if !ignored(&temp) {
            "does not ignore the temporary file written beside it first (`.natsform-*.tmp`)"
        } else {
            continue;
        };
        bail!(
            "creds --out: {} is inside the git working tree {} and git {what}: a creds file holds the user's seed, and `git add -A` or `git commit -a` would put it in the repository's history; nothing was written\n  = help: write the creds outside the repository, or let git ignore them (`*.creds` and `.natsform-*.tmp` in .gitignore, as `natsform init` writes it){}",
            escape_line(&file.display().to_string()),
            escape_line(&workdir.display().to_string()),
            if tracked { " and `git rm --cached` the file" } else { "" },
        );
    }
    Ok(())
}

/// The deepest existing ancestor of `dir` (itself included), resolved, and
/// the part of `dir` below it that does not exist yet, with `.` and `..`
/// resolved by name (nothing there exists, so nothing there is a link).
/// `None` when nothing of it resolves.
fn resolve_existing(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(dir)
    };
    let (mut real, below) = absolute.ancestors().find_map(|a| {
        let real = a.canonicalize().ok()?;
        Some((real, absolute.strip_prefix(a).ok()?.to_path_buf()))
    })?;
    let mut tail = PathBuf::new();
    for part in below.components() {
        match part {
            Component::Normal(name) => tail.push(name),
            Component::ParentDir if !tail.pop() => {
                real = real.parent()?.to_path_buf();
            }
            _ => {}
        }
    }
    Some((real, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_part_of_a_directory_is_kept_below_its_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let (real, rest) = resolve_existing(&tmp.path().join("a/b")).unwrap();
        assert_eq!(real, tmp.path().canonicalize().unwrap());
        assert_eq!(rest, PathBuf::from("a/b"));
        let (real, rest) = resolve_existing(tmp.path()).unwrap();
        assert_eq!(real, tmp.path().canonicalize().unwrap());
        assert_eq!(rest, PathBuf::new());
        // `..` after a part that does not exist yet cancels it by name.
        let (real, rest) = resolve_existing(&tmp.path().join("new/../out")).unwrap();
        assert_eq!(real, tmp.path().canonicalize().unwrap());
        assert_eq!(rest, PathBuf::from("out"));
        let (real, rest) = resolve_existing(&tmp.path().join("new/../../out")).unwrap();
        assert_eq!(real, tmp.path().canonicalize().unwrap().parent().unwrap());
        assert_eq!(rest, PathBuf::from("out"));
    }
}
