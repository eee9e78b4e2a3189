//! Issue 8, item 1: whatever the repository holds, `plan` and `apply` never
//! read, write or delete outside the project through the store, the vault
//! or the lock. Each trick runs against a "world" directory that holds the
//! project and, beside it, an `outside` directory with an unrelated file;
//! after plan and apply (with and without --allow-destroy) the outside tree
//! and the project tree are byte for byte what they were, and the command
//! failed with a message that names the culprit.

#![cfg(unix)]

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use support::cli::{repo_root, Project, Run};

/// A file, directory or link of a tree: its relative path and what it is.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    File(PathBuf, Vec<u8>),
    Dir(PathBuf),
    Link(PathBuf, PathBuf),
}

/// Everything under `root`, links recorded as links (never followed).
fn tree(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let p = entry.expect("entry").path();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let md = fs::symlink_metadata(&p).unwrap();
        if md.file_type().is_symlink() {
            out.push(Entry::Link(rel, fs::read_link(&p).unwrap()));
        } else if md.is_dir() {
            out.push(Entry::Dir(rel));
            walk(root, &p, out);
        } else {
            out.push(Entry::File(rel, fs::read(&p).unwrap()));
        }
    }
}

/// `<world>/project/natsform.toml` (the walkthrough) and
/// `<world>/outside/` holding an unrelated file and an `accounts/A/`
/// directory shaped like a store's, so a path that escapes lands on files.
struct World {
    project: Project,
}

impl World {
    fn new() -> World {
        World::with_manifest(
            &fs::read_to_string(repo_root().join("examples/walkthrough/natsform.toml")).unwrap(),
        )
    }

    fn with_manifest(text: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let project_dir = dir.path().join("project");
        fs::create_dir(&project_dir).unwrap();
        let manifest = project_dir.join("natsform.toml");
        fs::write(&manifest, text).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("accounts/A/users")).unwrap();
        fs::write(outside.join("unrelated.txt"), "keep me\n").unwrap();
        fs::write(outside.join("accounts/A/A.jwt"), "not a jwt, keep me").unwrap();
        fs::write(outside.join("accounts/A/users/U.jwt"), "keep me too").unwrap();
        World {
            project: Project { dir, manifest },
        }
    }

    fn world(&self) -> &Path {
        self.project.dir.path()
    }

    fn dir(&self) -> PathBuf {
        self.world().join("project")
    }

    fn outside(&self) -> PathBuf {
        self.world().join("outside")
    }

    /// Runs plan, apply and apply --allow-destroy; each must fail and leave
    /// both trees alone. Returns the three whole runs, filtered (the project
    /// directory is `[PROJECT]`, the world around it `[TEMP]`).
    fn attempt(&self) -> String {
        let outside_before = tree(&self.outside());
        let project_before = tree(&self.dir());
        let mut printed = String::new();
        for args in [
            &["plan"][..],
            &["apply", "--auto-approve"],
            &["apply", "--auto-approve", "--allow-destroy"],
        ] {
            let run: Run = self.project.natsform(args).run().failure();
            assert_eq!(
                tree(&self.outside()),
                outside_before,
                "`{}` changed the outside directory",
                args.join(" ")
            );
            assert_eq!(
                tree(&self.dir()),
                project_before,
                "`{}` changed the project",
                args.join(" ")
            );
            assert!(run.stdout.is_empty(), "{}", run.stdout);
            printed.push_str(&format!("$ natsform {}\n", args.join(" ")));
            printed.push_str(&run.snapshot(&self.project));
        }
        printed
    }

    /// Applies the walkthrough once, so there is a store to tamper with.
    fn applied() -> World {
        let w = World::new();
        w.project.apply();
        w
    }
}

#[test]
fn marker_naming_a_relative_path_outside_is_refused() {
    let w = World::applied();
    let evil = w.dir().join("store/evil");
    fs::create_dir_all(evil.join("accounts/A")).unwrap();
    fs::write(
        evil.join(".nsc"),
        r#"{"managed":false,"name":"../../outside","kind":"operator","version":"1"}"#,
    )
    .unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn marker_naming_an_absolute_path_is_refused() {
    let w = World::applied();
    let evil = w.dir().join("store/evil");
    fs::create_dir_all(evil.join("accounts/A")).unwrap();
    let name = serde_json::to_string(&w.outside().display().to_string()).unwrap();
    fs::write(
        evil.join(".nsc"),
        format!(r#"{{"managed":false,"name":{name},"kind":"operator","version":"1"}}"#),
    )
    .unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn marker_naming_another_operator_directory_is_refused() {
    // Not an escape, but two directories would claim one operator and every
    // write would go to the other one.
    let w = World::applied();
    let other = w.dir().join("store/copy");
    fs::create_dir_all(&other).unwrap();
    fs::copy(w.dir().join("store/O2/.nsc"), other.join(".nsc")).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_marker_is_refused() {
    let w = World::applied();
    let evil = w.dir().join("store/evil");
    fs::create_dir_all(&evil).unwrap();
    fs::write(
        w.outside().join("marker"),
        r#"{"managed":false,"name":"evil","kind":"operator","version":"1"}"#,
    )
    .unwrap();
    symlink(w.outside().join("marker"), evil.join(".nsc")).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_account_directory_is_refused() {
    let w = World::applied();
    let acc = w.dir().join("store/O2/accounts/A");
    fs::remove_dir_all(&acc).unwrap();
    symlink(w.outside().join("accounts/A"), &acc).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_accounts_directory_is_refused() {
    let w = World::applied();
    let accs = w.dir().join("store/O2/accounts");
    fs::remove_dir_all(&accs).unwrap();
    symlink(w.outside().join("accounts"), &accs).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_users_directory_is_refused() {
    let w = World::applied();
    let users = w.dir().join("store/O2/accounts/A/users");
    fs::remove_dir_all(&users).unwrap();
    symlink(w.outside().join("accounts/A/users"), &users).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_jwt_file_is_refused() {
    let w = World::applied();
    let jwt = w.dir().join("store/O2/accounts/A/A.jwt");
    fs::remove_file(&jwt).unwrap();
    symlink(w.outside().join("accounts/A/A.jwt"), &jwt).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_store_directory_is_refused() {
    let w = World::new();
    symlink(w.outside(), w.dir().join("store")).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_vault_directory_is_refused() {
    let w = World::new();
    symlink(w.outside(), w.dir().join("vault")).unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_vault_file_is_refused() {
    let w = World::applied();
    // A new user needs the account's seed: make that seed file a link.
    let lock = fs::read_to_string(w.dir().join("natsform.lock")).unwrap();
    let account_key = lock
        .lines()
        .find_map(|l| {
            l.strip_prefix("\"account.O2/A#")
                .and_then(|r| r.split('"').nth(2))
        })
        .expect("account A in the lock")
        .to_string();
    let seed = w.dir().join(format!("vault/{account_key}.age"));
    fs::rename(&seed, w.outside().join("seed.age")).unwrap();
    symlink(w.outside().join("seed.age"), &seed).unwrap();
    let text = fs::read_to_string(&w.project.manifest).unwrap();
    fs::write(
        &w.project.manifest,
        format!("{text}\n[operators.O2.accounts.A.users.newcomer]\n"),
    )
    .unwrap();
    let outside_before = tree(&w.outside());
    let project_before = tree(&w.dir());
    // Plan needs no seed, but checks every seed file without following it.
    let plan = w.project.run_without_identity(&["plan"]).failure();
    // In the plan, once; the error points at it.
    assert!(
        plan.stdout
            .contains(".age is a symbolic link, and natsform does not follow links"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stderr.contains("apply refuses this plan") && !plan.stderr.contains(".age"),
        "{}",
        plan.stderr
    );
    // A private copy of the demo identity, so no permission warning varies
    // with the checkout's umask.
    let identity = w.world().join("identity.txt");
    fs::copy(support::cli::demo_identity(), &identity).unwrap();
    fs::set_permissions(&identity, fs::Permissions::from_mode(0o600)).unwrap();
    let run = natsform_snapshot!(w
        .project
        .natsform(&["apply", "--auto-approve"])
        .env("NATSFORM_AGE_IDENTITY", &identity));
    run.failure();
    assert_eq!(tree(&w.outside()), outside_before);
    assert_eq!(tree(&w.dir()), project_before);
}

#[test]
fn symlinked_lock_is_refused() {
    let w = World::new();
    fs::write(w.outside().join("natsform.lock"), "version = 1\n").unwrap();
    symlink(
        w.outside().join("natsform.lock"),
        w.dir().join("natsform.lock"),
    )
    .unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn symlinked_directory_on_the_way_to_the_store_is_refused() {
    let w = World::with_manifest(&walkthrough_with("store = \"state/store\""));
    symlink(w.outside(), w.dir().join("state")).unwrap();
    insta::assert_snapshot!(w.attempt());
}

fn walkthrough_with(top_line: &str) -> String {
    let text = fs::read_to_string(repo_root().join("examples/walkthrough/natsform.toml")).unwrap();
    format!("{top_line}\n{text}")
}

#[test]
fn store_above_the_manifest_is_refused_by_validation() {
    let w = World::with_manifest(&walkthrough_with("store = \"../outside\""));
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn absolute_store_is_refused_by_validation() {
    let w = World::new();
    let outside = w.outside().display().to_string();
    fs::write(
        &w.project.manifest,
        walkthrough_with(&format!(
            "store = {}",
            serde_json::to_string(&outside).unwrap()
        )),
    )
    .unwrap();
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn vault_above_the_manifest_is_refused_by_validation() {
    let w = World::with_manifest(&walkthrough_with("vault = \"sub/../../outside\""));
    insta::assert_snapshot!(w.attempt());
}

#[test]
fn store_entry_names_that_no_manifest_could_declare_are_refused() {
    let w = World::applied();
    let users = w.dir().join("store/O2/accounts/A/users");
    fs::copy(users.join("U.jwt"), users.join("e\u{1b}[2Jvil.jwt")).unwrap();
    let printed = w.attempt();
    assert!(
        !printed.bytes().any(|b| b == 0x1b),
        "raw ESC in the message: {printed:?}"
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn an_untouched_project_still_applies_and_deletes_inside() {
    // The checks refuse only what they should: deleting an account (a
    // whole directory) still works on a store without links.
    let w = World::applied();
    let text = fs::read_to_string(&w.project.manifest).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .scan(false, |skipping, line| {
            if line.starts_with('[') {
                *skipping = line.starts_with("[operators.O2.accounts.sales");
            }
            Some(if *skipping { "" } else { line })
        })
        .collect();
    assert_ne!(kept, text);
    fs::write(&w.project.manifest, kept).unwrap();
    let outside_before = tree(&w.outside());
    let run = w.project.run(&["apply", "--auto-approve"]).success();
    assert!(
        run.stderr.contains("- account.O2/sales deleted"),
        "{}",
        run.stderr
    );
    assert!(!w.dir().join("store/O2/accounts/sales").exists());
    assert_eq!(tree(&w.outside()), outside_before);
}
