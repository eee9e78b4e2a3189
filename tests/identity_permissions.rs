//! Issue 8, item 11: an identity file that group or others can read is used,
//! with a warning on stderr that names it and says `chmod 600 FILE`; a
//! private one gives no warning.

#![cfg(unix)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use support::cli::{demo_identity, Project};

/// A copy of the demo identity with `mode`, beside (not inside) the project.
fn identity(dir: &tempfile::TempDir, mode: u32) -> PathBuf {
    let path = dir.path().join(format!("identity-{mode:o}.txt"));
    fs::copy(demo_identity(), &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn warning_for(path: &std::path::Path) -> String {
    format!(
        "warning: identity file {} (--identity) can be read by other users",
        path.display()
    )
}

#[test]
fn apply_and_creds_warn_about_an_identity_others_can_read() {
    let keys = tempfile::tempdir().unwrap();
    let open = identity(&keys, 0o644);
    let project = Project::from_example("quickstart", "natsform.toml");
    let run = project
        .run(&[
            "apply",
            "--auto-approve",
            "--quiet",
            "--identity",
            open.to_str().unwrap(),
        ])
        .success();
    assert!(run.stderr.contains(&warning_for(&open)), "{}", run.stderr);
    assert!(
        run.stderr.contains("(mode 0644)")
            && run
                .stderr
                .contains(&format!("run `chmod 600 {}`", open.display())),
        "{}",
        run.stderr
    );
    let creds = project
        .run(&["creds", "app/alice", "--identity", open.to_str().unwrap()])
        .success();
    assert!(
        creds.stderr.contains(&warning_for(&open)),
        "{}",
        creds.stderr
    );
    assert!(creds.stdout.contains("BEGIN USER NKEY SEED"));
    // Group-readable is as open as world-readable.
    let group = identity(&keys, 0o640);
    let creds = project
        .run(&["creds", "app/alice", "--identity", group.to_str().unwrap()])
        .success();
    assert!(creds.stderr.contains("(mode 0640)"), "{}", creds.stderr);
}

#[test]
fn a_private_identity_gives_no_warning() {
    let keys = tempfile::tempdir().unwrap();
    let private = identity(&keys, 0o600);
    let project = Project::from_example("quickstart", "natsform.toml");
    let run = project
        .run(&[
            "apply",
            "--auto-approve",
            "--identity",
            private.to_str().unwrap(),
        ])
        .success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let creds = project
        .run(&[
            "creds",
            "app/alice",
            "--identity",
            private.to_str().unwrap(),
        ])
        .success();
    assert!(!creds.stderr.contains("warning"), "{}", creds.stderr);
    // The identity given by the environment is checked the same way.
    let open = identity(&keys, 0o604);
    let creds = project
        .run_env(
            &["creds", "app/alice"],
            &[("NATSFORM_AGE_IDENTITY", open.to_str().unwrap())],
        )
        .success();
    assert!(
        creds
            .stderr
            .contains("(NATSFORM_AGE_IDENTITY) can be read by other users (mode 0604)"),
        "{}",
        creds.stderr
    );
}
