//! `creds --out DIR` inside a git working tree writes a creds file (the
//! user's seed in plaintext) only where git ignores it and does not track
//! it; otherwise it refuses with nothing written. Outside a repository it
//! writes as before.

#![cfg(unix)]

mod support;

use std::fs;
use std::path::Path;

use git2::Repository;
use support::cli::{find_seeds, Project, Run, DEMO_MANIFEST as MANIFEST};

/// An applied project in a fresh git repository (no commit needed: the
/// ignore rules and the index are what count).
fn project_in_git() -> (Project, Repository) {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let repo = Repository::init(p.path()).unwrap();
    (p, repo)
}

/// `creds --out out app/alice`, with no global or system git config of
/// this machine (its excludes file could ignore anything).
fn creds_out(p: &Project, home: &Path) -> Run {
    creds_out_to(p, home, "out")
}

fn creds_out_to(p: &Project, home: &Path, dir: &str) -> Run {
    p.natsform(&["creds", "--out", dir, "app/alice"])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .run()
}

fn written(p: &Project) -> bool {
    p.path().join("out/demo/app/alice.creds").exists()
}

#[test]
fn refused_where_git_would_pick_the_seed_up() {
    let (p, _repo) = project_in_git();
    let home = tempfile::tempdir().unwrap();
    let run = creds_out(&p, home.path()).failure();
    assert!(
        run.stderr.contains("git does not ignore it") && run.stderr.contains("nothing was written"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("*.creds"),
        "says how to fix it: {}",
        run.stderr
    );
    assert!(find_seeds(run.stderr.as_bytes()).is_empty());
    assert!(find_seeds(run.stdout.as_bytes()).is_empty());
    assert!(!written(&p));
    assert!(!p.path().join("out").exists(), "not even the directory");
}

#[test]
fn refused_through_a_directory_that_does_not_exist_yet_and_dot_dot() {
    let (p, _repo) = project_in_git();
    let home = tempfile::tempdir().unwrap();
    let run = creds_out_to(&p, home.path(), "new/../out").failure();
    assert!(
        run.stderr.contains("git does not ignore it"),
        "{}",
        run.stderr
    );
    assert!(!p.path().join("out").exists() && !p.path().join("new").exists());
}

#[test]
fn refused_where_git_ignores_the_creds_but_not_the_temporary_file() {
    let (p, _repo) = project_in_git();
    fs::write(p.path().join(".gitignore"), "*.creds\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = creds_out(&p, home.path()).failure();
    assert!(
        run.stderr.contains("does not ignore the temporary file"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(".natsform-*.tmp"), "{}", run.stderr);
    assert!(!written(&p));
}

#[test]
fn written_where_git_ignores_it() {
    let (p, _repo) = project_in_git();
    fs::write(p.path().join(".gitignore"), "*.creds\n.natsform-*.tmp\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    creds_out(&p, home.path()).success();
    assert!(written(&p));
    let text = fs::read_to_string(p.path().join("out/demo/app/alice.creds")).unwrap();
    assert_eq!(
        find_seeds(text.as_bytes()).len(),
        1,
        "a creds file holds its seed"
    );
}

#[test]
fn refused_where_git_tracks_the_file_although_it_is_ignored() {
    let (p, repo) = project_in_git();
    fs::write(p.path().join(".gitignore"), "out/\n").unwrap();
    // (`out/` ignores the temporary files there too)
    let file = p.path().join("out/demo/app/alice.creds");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "placeholder\n").unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_path(Path::new("out/demo/app/alice.creds"))
        .unwrap();
    index.write().unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = creds_out(&p, home.path()).failure();
    assert!(
        run.stderr.contains("git tracks that file"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("git rm --cached"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&file).unwrap(), "placeholder\n");
}

#[test]
fn written_outside_any_repository() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let home = tempfile::tempdir().unwrap();
    creds_out(&p, home.path()).success();
    assert!(written(&p));
}
