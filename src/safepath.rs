//! Paths inside the project: what natsform accepts as a name that becomes a
//! file name, as a project-relative directory, and how it walks from the
//! project directory (the manifest's directory) to a file without following
//! symbolic links.
//!
//! Everything under the project may have been written by whoever wrote the
//! branch being planned. A name read from the store (the operator in a
//! `.nsc` marker, an account directory, a user file) or from the manifest
//! (`store`, `vault`) must never lead a read, write or delete outside the
//! project, and a link inside the project must never be followed: either
//! could turn `apply` into a tool that overwrites or deletes files anywhere
//! its user can.

use std::borrow::Cow;
use std::io;
use std::path::{Component, Path};

/// Whether `name` can be used as one file name in the store: the rule for
/// operator, account and user names of the manifest. Not empty, no leading
/// `.` (so neither `.` nor `..`), no surrounding spaces, no `/`, `\`, NUL
/// or other control characters; hence never absolute and never more than
/// one path component.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.trim() == name
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || is_unsafe_char(c))
        && matches!(
            Path::new(name).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(_)]
        )
}

/// Why a manifest's `store` or `vault` value cannot be used, if it cannot:
/// it must be a relative path that stays inside the manifest's directory
/// (no `..`, not absolute, not the directory itself, no control characters).
pub fn project_dir_problem(value: &str) -> Option<&'static str> {
    if value.chars().any(char::is_control) {
        return Some("contains control characters");
    }
    let path = Path::new(value);
    if path.has_root() || value.starts_with('/') || value.starts_with('\\') {
        return Some("is an absolute path");
    }
    let mut normal = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            Component::ParentDir => return Some("goes up with `..`"),
            Component::RootDir | Component::Prefix(_) => return Some("is an absolute path"),
        }
    }
    if normal == 0 {
        return Some("names the manifest's directory itself");
    }
    None
}

/// The error for a symbolic link met inside the project.
pub fn link_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; natsform does not follow links inside the project\n  \
         = help: replace the link by the directory or file itself (links could make natsform \
         read, write or delete files outside the project)",
        path.display()
    ))
}

/// Refuses `path` when it, or any existing directory between `base` (not
/// included) and it, is a symbolic link. Components that do not exist yet
/// are fine: natsform creates them as real directories. `path` must lie
/// under `base` without `..`.
pub fn check_no_links(base: &Path, path: &Path) -> io::Result<()> {
    check_no_links_in(&crate::source::WorkDir, base, path)
}

/// [`check_no_links`] in any [`Source`](crate::source::Source): a git
/// tree's links and submodules are refused the same way.
pub fn check_no_links_in(
    src: &dyn crate::source::Source,
    base: &Path,
    path: &Path,
) -> io::Result<()> {
    let rel = path.strip_prefix(base).map_err(|_| {
        io::Error::other(format!(
            "{} is outside the project directory {}",
            src.shown(path).display(),
            src.shown(base).display()
        ))
    })?;
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => cur.push(part),
            Component::CurDir => continue,
            _ => {
                return Err(io::Error::other(format!(
                    "{} leaves the project directory {}",
                    src.shown(path).display(),
                    src.shown(base).display()
                )))
            }
        }
        match src.kind(&cur)? {
            Some(kind) if kind.is_link() => {
                return Err(crate::source::refused(&src.shown(&cur), kind))
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Why a link is refused, for messages that name the path themselves.
pub const LINK_REFUSED: &str = "it is a symbolic link, and natsform does not follow links inside \
     the project; replace the link by the file itself";

/// Whether `path` itself is a symbolic link (false when it does not exist).
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Refuses `path` itself when it is a symbolic link (a missing path is fine).
pub fn check_not_link(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => Err(link_error(path)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("reading {}: {e}", path.display()),
        )),
    }
}

/// Whether `c` must not reach a terminal raw: C0 controls, DEL, C1
/// controls, the Unicode line and paragraph separators, and the
/// bidirectional marks, overrides and isolates (which make text display in
/// another order than it reads).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character but newline and tab written as a
/// visible escape, `\u{1b}` for ESC (Rust's notation). For text that ends
/// up on a terminal or in a CI log: messages, notes.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_except(text, &['\n', '\t'])
}

/// Like [`escape_controls`], but newlines and tabs are escaped too: for
/// text that must stay on one line.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_except(text, &[])
}

fn escape_except<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text
        .chars()
        .any(|c| is_unsafe_char(c) && !keep.contains(&c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) && !keep.contains(&c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Why `store` and `vault` (both already relative and inside the project)
/// cannot be used together: when one is the other or lies inside it. Apply
/// removes a deleted account's or operator's store directory with
/// everything in it, so a vault inside the store could lose every seed.
/// Compared without case, as on case-insensitive file systems.
pub fn store_vault_overlap(store: &str, vault: &str) -> Option<String> {
    let parts = |p: &str| -> Vec<String> {
        Path::new(p)
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().to_lowercase()),
                _ => None,
            })
            .collect()
    };
    let (s, v) = (parts(store), parts(vault));
    let (store, vault) = (escape_line(store), escape_line(vault));
    if s == v {
        Some(format!(
            "`store` and `vault` name the same directory `{store}`"
        ))
    } else if v.starts_with(&s) {
        Some(format!(
            "`vault = \"{vault}\"` lies inside the store `{store}`"
        ))
    } else if s.starts_with(&v) {
        Some(format!(
            "`store = \"{store}\"` lies inside the vault `{vault}`"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_one_plain_component() {
        for good in ["O2", "a b", "user-1", "ü", "x.y"] {
            assert!(is_safe_name(good), "{good}");
        }
        for bad in [
            "", ".", "..", "../x", "/abs", "a/b", "a\\b", ".hidden", " x", "x ", "a\0b",
            "a\u{1b}b", "a\nb", "a\u{9b}b",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn project_dirs_stay_inside() {
        assert_eq!(project_dir_problem("store"), None);
        assert_eq!(project_dir_problem("./state/store"), None);
        assert_eq!(project_dir_problem("../x"), Some("goes up with `..`"));
        assert_eq!(project_dir_problem("a/../../x"), Some("goes up with `..`"));
        assert_eq!(project_dir_problem("/tmp/x"), Some("is an absolute path"));
        assert_eq!(project_dir_problem("\\x"), Some("is an absolute path"));
        assert_eq!(
            project_dir_problem(""),
            Some("names the manifest's directory itself")
        );
        assert_eq!(
            project_dir_problem("."),
            Some("names the manifest's directory itself")
        );
        assert_eq!(
            project_dir_problem("a\u{1b}b"),
            Some("contains control characters")
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_between_base_and_path_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("store/O")).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("store/O/accounts")).unwrap();
        assert!(check_no_links(base, &base.join("store/O/x.jwt")).is_ok());
        assert!(check_no_links(base, &base.join("store/N/accounts/A")).is_ok());
        let e = check_no_links(base, &base.join("store/O/accounts/A/A.jwt")).unwrap_err();
        assert!(e.to_string().contains("accounts is a symbolic link"), "{e}");
        let e = check_no_links(base, &base.join("store/O/accounts")).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(check_no_links(base, Path::new("/elsewhere")).is_err());
        assert!(check_no_links(base, &base.join("store/../x")).is_err());
    }

    #[test]
    fn controls_are_escaped_visibly() {
        assert_eq!(escape_controls("plain ü"), "plain ü");
        assert_eq!(
            escape_controls("a\u{1b}[2J\u{7}\tb\nc\u{7f}\u{9b}\u{202e}"),
            "a\\u{1b}[2J\\u{7}\tb\nc\\u{7f}\\u{9b}\\u{202e}"
        );
        assert_eq!(escape_line("a\nb\tc\r"), "a\\u{a}b\\u{9}c\\u{d}");
    }
}
