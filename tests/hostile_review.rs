//! Issue 8, found in review: the manifest itself as a link or a pipe, a lock
//! binding of the wrong kind, and a lock rebinding a live user to a deleted
//! user's revoked key. Each through the binary, in temporary directories.

#![cfg(unix)]

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use support::cli::{demo_identity, find_seeds, Project, Run, DEMO_MANIFEST as MANIFEST};

/// A file outside the project holding what a CI machine keeps secret.
const OUTSIDE_SECRET: &str =
    "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\nCI_TOKEN=hunter2-not-for-logs\n";

fn run_in(dir: &std::path::Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsform"));
    cmd.args(args).current_dir(dir);
    cmd.env_remove("NATSFORM_AGE_KEY")
        .env_remove("NATSFORM_MANIFEST")
        .env("NATSFORM_AGE_IDENTITY", demo_identity())
        .env("NO_COLOR", "1");
    Run::from(cmd.output().expect("running natsform"))
}

#[test]
fn a_manifest_that_is_a_link_is_refused_without_reading_its_target() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("key.txt");
    fs::write(&secret, OUTSIDE_SECRET).unwrap();
    let project = tempfile::tempdir().unwrap();
    symlink(&secret, project.path().join("natsform.toml")).unwrap();
    // Found in the current directory, and named with -f; also a dangling link.
    let runs = [
        run_in(project.path(), &["plan"]),
        run_in(project.path(), &["validate"]),
        run_in(
            project.path(),
            &["-f", "natsform.toml", "apply", "--auto-approve"],
        ),
    ];
    fs::remove_file(project.path().join("natsform.yaml")).ok();
    symlink(
        outside.path().join("gone"),
        project.path().join("natsform.yaml"),
    )
    .unwrap();
    fs::remove_file(project.path().join("natsform.toml")).unwrap();
    let dangling = run_in(project.path(), &["plan"]);
    for run in runs.iter().chain([&dangling]) {
        assert_eq!(run.code, 1, "{run:?}");
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("is a symbolic link"), "{all}");
        assert!(
            all.contains("replace the link by the manifest itself"),
            "{all}"
        );
        assert!(!all.contains("hunter2"), "{all}");
        assert!(!all.contains("AGE-SECRET-KEY"), "{all}");
    }
    assert_eq!(fs::read_to_string(&secret).unwrap(), OUTSIDE_SECRET);
    let left: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["natsform.yaml"], "nothing was written");
}

#[test]
fn a_manifest_that_is_a_pipe_is_refused_at_once() {
    let project = tempfile::tempdir().unwrap();
    let fifo = project.path().join("natsform.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Reading a pipe nobody writes would block forever.
    let run = run_in(project.path(), &["plan"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("the manifest natsform.toml is not a regular file"),
        "{}",
        run.stderr
    );
}

fn set_lock_line(p: &Project, address: &str, key: Option<&str>) {
    let path = p.path().join("natsform.lock");
    let text = fs::read_to_string(&path).unwrap();
    let prefix = format!("\"{address}\" = ");
    let out: Vec<String> = text
        .lines()
        .filter_map(|l| {
            if l.starts_with(&prefix) {
                key.map(|k| format!("{prefix}\"{k}\""))
            } else {
                Some(l.to_string())
            }
        })
        .collect();
    fs::write(path, out.join("\n") + "\n").unwrap();
}

fn lock_key(p: &Project, address: &str) -> String {
    let text = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    let prefix = format!("\"{address}\" = \"");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|k| k.trim_end_matches('"').to_string())
        .expect("address in the lock")
}

#[test]
fn a_lock_binding_a_user_to_an_operator_key_is_refused_at_load() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    // Moved, not copied: no other address holds the key, so only its kind
    // is wrong.
    let operator = lock_key(&p, "operator.demo#v1");
    set_lock_line(&p, "operator.demo#v1", None);
    set_lock_line(&p, "user.demo/app/bob#v1", Some(&operator));
    let before = p.files();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["creds", "app/bob"],
    ] {
        let run = p.run(args).failure();
        assert!(
            run.stderr.contains("`user.demo/app/bob#v1` is bound to O")
                && run
                    .stderr
                    .contains("an operator key, but a user address needs a user key (U…)"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run
            .stderr
            .contains("delete the line of `user.demo/app/bob#v1`"));
        assert!(find_seeds(run.stderr.as_bytes()).is_empty());
    }
    assert_eq!(p.files(), before, "nothing changed on disk");
}

#[test]
fn a_lock_binding_an_account_to_a_user_key_is_refused_at_load() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let bob = lock_key(&p, "user.demo/app/bob#v1");
    set_lock_line(&p, "user.demo/app/bob#v1", None);
    set_lock_line(&p, "account.demo/app#v1", Some(&bob));
    let run = p.run(&["plan"]).failure();
    assert!(
        run.stderr
            .contains("a user key, but an account address needs an account key (A…)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_lock_rebinding_a_user_to_a_deleted_users_key_shows_that_the_key_is_revoked() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let alice = lock_key(&p, "user.demo/app/alice#v1");
    // Alice's seed is in her account's bundle of user seeds (and its index).
    let app = lock_key(&p, "account.demo/app#v1");
    let bundle = p.path().join("vault").join(format!("{app}.users.age"));
    let index = p.path().join("vault").join(format!("{app}.users.keys"));
    let (bundle_sealed, index_text) = (fs::read(&bundle).unwrap(), fs::read(&index).unwrap());
    assert!(String::from_utf8_lossy(&index_text).contains(&alice));
    // Delete alice: the account now revokes her key (and apply removes her
    // seed from the bundle, which git history still holds).
    fs::write(
        &p.manifest,
        MANIFEST.replace("[operators.demo.accounts.app.users.alice]\n", ""),
    )
    .unwrap();
    p.apply();
    assert!(!fs::read_to_string(&index).unwrap().contains(&alice));
    // A committer brings the bundle with her seed back from history.
    fs::write(&bundle, bundle_sealed).unwrap();
    fs::write(&index, index_text).unwrap();
    assert!(p.store_file("demo/accounts/app/app.jwt").len() > 10);
    let bob = lock_key(&p, "user.demo/app/bob#v1");
    // One file changed: bob's lock line now names alice's key, whose seed
    // is still in the vault. The new JWT would let alice's old seed in.
    set_lock_line(&p, "user.demo/app/bob#v1", Some(&alice));
    let run = p.run(&["plan"]).success();
    let block: String = run
        .stdout
        .lines()
        .skip_while(|l| !l.contains("user.demo/app/bob will be replaced"))
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        block.contains("a key the lock does not name (was the lock edited by hand?)"),
        "{block}"
    );
    assert!(block.contains("its key was revoked at"), "{block}");

    // The same key given to a user of another account, which never revoked
    // it: the plan names the account that did.
    set_lock_line(&p, "user.demo/app/bob#v1", Some(&bob));
    set_lock_line(&p, "user.demo/SYS/admin#v1", Some(&alice));
    // Her seed is in account app's bundle, not in SYS's: a blocker too.
    let run = p.run(&["plan"]).failure();
    assert!(
        run.stdout.contains(
            "Error: user.demo/SYS/admin#v1: its seed is not in its account's seed bundle"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("its key was revoked by account.demo/app at")
            && run
                .stdout
                .contains("whoever holds its seed can use this JWT"),
        "{}",
        run.stdout
    );
}

#[test]
fn creds_out_neither_writes_nor_sweeps_through_a_link_inside_its_directory() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("app")).unwrap();
    let victim = outside.path().join("app/.natsform-abc123.tmp");
    fs::write(&victim, "not natsform's").unwrap();
    // An output directory in the checkout, whose `<operator>` entry the
    // branch made a link to somewhere else.
    fs::create_dir(p.path().join("out")).unwrap();
    symlink(outside.path(), p.path().join("out/demo")).unwrap();
    let run = p.run(&["creds", "--out", "out"]).failure();
    assert!(
        run.stderr.contains("out/demo is a symbolic link"),
        "{}",
        run.stderr
    );
    assert!(find_seeds(run.stderr.as_bytes()).is_empty());
    assert!(find_seeds(run.stdout.as_bytes()).is_empty());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "not natsform's");
    let files: Vec<_> = fs::read_dir(outside.path().join("app"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, [".natsform-abc123.tmp"], "no creds written outside");
}

#[test]
fn a_vault_inside_the_store_is_refused_before_an_account_deletion_takes_the_seeds() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    // One commit: the vault moved into account `app`'s store directory,
    // and account `app` deleted. Apply would remove the directory, and
    // every seed with it.
    let target = p.path().join("store/demo/accounts/app");
    for entry in fs::read_dir(p.path().join("vault")).unwrap() {
        let entry = entry.unwrap();
        fs::rename(entry.path(), target.join(entry.file_name())).unwrap();
    }
    let i = MANIFEST.find("[operators.demo.accounts.app").unwrap();
    fs::write(
        &p.manifest,
        MANIFEST[..i].replace(
            "[secrets]",
            "vault = \"store/demo/accounts/app\"\n\n[secrets]",
        ),
    )
    .unwrap();
    let before = p.files();
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let run = p.run(args).failure();
        assert!(
            run.stderr
                .contains("`vault = \"store/demo/accounts/app\"` lies inside the store `store`"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(p.files(), before, "no seed removed");
}

#[test]
fn a_seed_pasted_as_a_lock_address_is_never_shown() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let creds = p.creds("app/bob");
    let seed = find_seeds(creds.as_bytes())
        .pop()
        .expect("creds hold a seed");
    // bob's key, annotated in plans with its address, now under a seed.
    let bob = lock_key(&p, "user.demo/app/bob#v1");
    set_lock_line(&p, "user.demo/app/bob#v1", None);
    let path = p.path().join("natsform.lock");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("[keys]\n", &format!("[keys]\n\"{seed}\" = \"{bob}\"\n"));
    fs::write(&path, text).unwrap();
    for args in [&["plan"][..], &["plan", "--json"], &["show"]] {
        let run = p.run(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("looks like a seed (not shown)"),
            "{}",
            run.stderr
        );
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(find_seeds(all.as_bytes()).is_empty(), "{all}");
    }
}

#[test]
fn a_store_entry_named_like_a_seed_is_refused_without_being_shown() {
    let p = Project::with_manifest("natsform.toml", MANIFEST);
    p.apply();
    let creds = p.creds("app/bob");
    let seed = find_seeds(creds.as_bytes())
        .pop()
        .expect("creds hold a seed");
    let users = p.path().join("store/demo/accounts/app/users");
    let named = users.join(format!("{seed}.jwt"));
    fs::copy(users.join("bob.jwt"), &named).unwrap();
    let check = |what: &str| {
        for args in [
            &["plan"][..],
            &["plan", "--json"],
            &["show"],
            &["apply", "--auto-approve"],
        ] {
            let run = p.run(args);
            assert_eq!(run.code, 1, "{what} {args:?}: {run:?}");
            assert!(
                run.stderr.contains("looks like a seed (not shown)"),
                "{}",
                run.stderr
            );
            let all = format!("{}{}", run.stdout, run.stderr);
            assert!(find_seeds(all.as_bytes()).is_empty(), "{what}: {all}");
        }
    };
    check("user file");
    fs::remove_file(&named).unwrap();
    // A marker naming a seed as its operator.
    let other = p.path().join("store/other");
    fs::create_dir(&other).unwrap();
    fs::write(
        other.join(".nsc"),
        format!(r#"{{"managed":false,"name":"{seed}","kind":"operator","version":"1"}}"#),
    )
    .unwrap();
    check("marker");
}
