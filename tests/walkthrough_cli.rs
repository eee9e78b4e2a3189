//! The walkthrough example driven through the CLI without a server: plan,
//! apply, idempotence, determinism, creds format and secret hygiene.

mod support;

use std::fs;
use std::time::SystemTime;

use support::cli::{find_seeds, Project};

#[test]
fn first_plan_lists_every_create_and_second_plan_is_empty() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    let plan = project.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "changes pending: {}", plan.stderr);
    assert!(
        plan.stdout
            .contains("Plan: 9 to create, 0 to update, 0 to re-issue, 0 to replace, 0 to delete."),
        "{}",
        plan.stdout
    );
    for address in [
        "operator.O2",
        "account.O2/A",
        "account.O2/SYS",
        "account.O2/sales",
        "user.O2/A/U",
        "user.O2/A/worker",
        "user.O2/sales/pam",
        "user.O2/sales/joe",
        "user.O2/SYS/sys",
    ] {
        assert!(
            plan.stdout
                .contains(&format!("# {address} will be created")),
            "{address} missing from plan:\n{}",
            plan.stdout
        );
    }
    // Plan needs no secrets and writes nothing.
    let before = project.files();
    project.run_without_identity(&["plan"]).success();
    assert_eq!(project.files(), before);

    project.apply();
    let again = project.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
}

#[test]
fn a_second_apply_rewrites_nothing() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let files = project.files();
    let mtimes: Vec<SystemTime> = files
        .iter()
        .map(|(p, _)| {
            fs::metadata(project.path().join(p))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = project.apply();
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    assert_eq!(project.files(), files, "bytes changed");
    let after: Vec<SystemTime> = files
        .iter()
        .map(|(p, _)| {
            fs::metadata(project.path().join(p))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert_eq!(after, mtimes, "a file was rewritten");
}

#[test]
fn yaml_and_toml_walkthroughs_plan_the_same_objects() {
    let toml = Project::from_example("walkthrough", "natsform.toml");
    let yaml = Project::from_example("walkthrough", "natsform.yaml");
    let a = toml.run(&["plan", "--json"]).success().stdout;
    let b = yaml.run(&["plan", "--json"]).success().stdout;
    assert_eq!(a, b);
}

#[test]
fn the_same_inputs_give_the_same_plan_byte_for_byte() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    fs::write(
        &project.manifest,
        fs::read_to_string(&project.manifest)
            .unwrap()
            .replace("team:leads", "team:managers"),
    )
    .unwrap();
    let a = project.run(&["plan"]).stdout;
    let b = project.run(&["plan"]).stdout;
    assert_eq!(a, b);
    assert!(a.contains("team:managers"), "{a}");
}

#[test]
fn creds_match_the_nsc_format_and_out_writes_private_files() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let creds = project.creds("A/U");
    let jwt = project.store_file("O2/accounts/A/users/U.jwt");
    let lines: Vec<&str> = creds.split('\n').collect();
    assert_eq!(lines[0], "-----BEGIN NATS USER JWT-----");
    assert_eq!(lines[1], jwt);
    assert_eq!(lines[2], "------END NATS USER JWT------");
    assert_eq!(
        lines[4],
        "************************* IMPORTANT *************************"
    );
    assert_eq!(lines[8], "-----BEGIN USER NKEY SEED-----");
    assert!(lines[9].starts_with("SU") && lines[9].len() == 58);
    assert_eq!(lines[10], "------END USER NKEY SEED------");
    assert_eq!(
        lines[12],
        "*************************************************************"
    );
    assert!(creds.ends_with("*\n"));

    let out = project.path().join("creds-out");
    project
        .run(&["creds", "--out", out.to_str().unwrap()])
        .success();
    let file = out.join("O2/A/U.creds");
    assert_eq!(fs::read_to_string(&file).unwrap(), creds);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(out.join("O2/sales/pam.creds").exists());
}

#[test]
fn no_plaintext_seed_is_written_or_printed_outside_creds() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    let mut printed = String::new();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["plan", "--json"],
        &["show"],
        &["validate"],
    ] {
        let run = project.run(args).success();
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
    }
    // Errors must not leak seeds either: a creds request for an unknown user.
    let run = project.run(&["creds", "A/nobody"]).failure();
    printed.push_str(&run.stdout);
    printed.push_str(&run.stderr);
    assert_eq!(find_seeds(printed.as_bytes()), Vec::<String>::new());
    for (path, bytes) in project.files() {
        assert_eq!(
            find_seeds(&bytes),
            Vec::<String>::new(),
            "plaintext seed in {}",
            path.display()
        );
    }
    // The check itself works: creds output does carry a seed.
    assert_eq!(find_seeds(project.creds("A/U").as_bytes()).len(), 1);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve_and_changes_nothing() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    let before = project.files();
    let run = project.run(&["apply"]).failure();
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert_eq!(project.files(), before);
}

#[test]
fn the_store_is_readable_as_an_nsc_store() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let marker = fs::read_to_string(project.path().join("store/O2/.nsc")).unwrap();
    assert_eq!(
        marker,
        r#"{"managed":false,"name":"O2","kind":"operator","version":"1"}"#
    );
    for f in [
        "store/O2/O2.jwt",
        "store/O2/accounts/A/A.jwt",
        "store/O2/accounts/sales/users/pam.jwt",
    ] {
        let text = fs::read_to_string(project.path().join(f)).unwrap();
        assert!(text.starts_with("eyJ") && !text.ends_with('\n'), "{f}");
    }
}

/// `creds` prints only what apply has written and servers would accept:
/// a user with pending changes, or whose account is not in the store yet,
/// is refused; `creds --out DIR` with no user names a user whose stored JWT
/// does not verify instead of leaving it out in silence.
#[test]
fn creds_refuse_what_apply_has_not_written_yet() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    // Pending changes of the user itself.
    let manifest = fs::read_to_string(&p.manifest).unwrap();
    let changed = manifest.replacen(
        "[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:support\"]",
        "[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:leads\"]",
        1,
    );
    assert_ne!(changed, manifest);
    fs::write(&p.manifest, &changed).unwrap();
    let run = p.run(&["creds", "sales/pam"]).failure();
    assert!(
        run.stderr.contains("user.O2/sales/pam has pending changes"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    fs::write(&p.manifest, &manifest).unwrap();
    p.run(&["creds", "sales/pam"]).success();

    // Its account's JWT missing from the store.
    let account = p.path().join("store/O2/accounts/A/A.jwt");
    let genuine = fs::read(&account).unwrap();
    fs::remove_file(&account).unwrap();
    let run = p.run(&["creds", "A/U"]).failure();
    assert!(
        run.stderr.contains("account.O2/A is not in the store yet"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    fs::write(&account, genuine).unwrap();

    // A stored user JWT that does not verify: `creds --out` refuses,
    // naming it, and writes nothing.
    let user = p.path().join("store/O2/accounts/sales/users/joe.jwt");
    let token = fs::read_to_string(&user).unwrap();
    fs::write(&user, format!("{}x", token.trim_end())).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = p
        .run(&["creds", "--out", out.path().to_str().unwrap()])
        .failure();
    assert!(run.stderr.contains("joe"), "{}", run.stderr);
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
}
