//! A hand-edited lock and a damaged vault end in a clear refusal that
//! changes nothing, or in a rotation the plan showed — never in a silent
//! success. `plan` finds every problem without an identity.

mod support;

use std::fs;
use std::path::PathBuf;

use support::cli::Project;

fn applied() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    p
}

fn lock_key(p: &Project, address: &str) -> String {
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    lock.lines()
        .find_map(|l| {
            let (a, k) = l.split_once(" = ")?;
            (a.trim_matches('"') == address).then(|| k.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("{address} not in the lock:\n{lock}"))
}

fn seed_file(p: &Project, address: &str) -> PathBuf {
    p.path()
        .join("vault")
        .join(format!("{}.age", lock_key(p, address)))
}

/// The bundle of the seeds of the users of the account at `address`.
fn bundle_file(p: &Project, address: &str) -> PathBuf {
    p.path()
        .join("vault")
        .join(format!("{}.users.age", lock_key(p, address)))
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// `plan` (no identity) and `apply` both refuse; nothing on disk changes.
/// Returns plan's and apply's whole runs, through the shared filters.
fn refused(p: &Project) -> (String, String) {
    let before = p.files();
    let plan = p.run_without_identity(&["plan"]).failure();
    let apply = p.run(&["apply", "--auto-approve"]).failure();
    assert_eq!(p.files(), before, "a refused run changed files");
    (plan.snapshot(p), apply.snapshot(p))
}

#[test]
fn two_addresses_bound_to_one_key_are_refused() {
    let p = applied();
    let lock_path = p.path().join("natsform.lock");
    let lock = fs::read_to_string(&lock_path).unwrap();
    let (u, worker) = (
        lock_key(&p, "user.O2/A/U#v1"),
        lock_key(&p, "user.O2/A/worker#v1"),
    );
    fs::write(&lock_path, lock.replace(&worker, &u)).unwrap();
    let (plan, apply) = refused(&p);
    assert_eq!(plan, apply);
    assert!(
        plan.contains("`user.O2/A/U#v1` and `user.O2/A/worker#v1` are both bound to key"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn a_lock_bound_to_a_key_without_a_seed_is_shown_and_refused() {
    let p = applied();
    let lock_path = p.path().join("natsform.lock");
    let lock = fs::read_to_string(&lock_path).unwrap();
    let foreign = natsform::keys::generate(natsform::keys::KeyKind::User).public_key();
    fs::write(
        &lock_path,
        lock.replace(&lock_key(&p, "user.O2/A/worker#v1"), &foreign),
    )
    .unwrap();
    let before = p.files();
    let plan = natsform_snapshot!(
        name = "foreign_key_plan",
        p.natsform(&["plan"]).without_identity()
    )
    .failure();
    let text = p.redact(&plan.stdout);
    assert!(
        text.contains("a key the lock does not name (was the lock edited by hand?)"),
        "{text}"
    );
    assert!(
        text.contains("Error: user.O2/A/worker#v1: its seed is not in its account's seed bundle <account.O2/A#v1>.users.age (its index <account.O2/A#v1>.users.keys does not list it)"),
        "{text}"
    );
    let apply = p.run(&["apply", "--auto-approve"]).failure();
    assert!(
        apply.stderr.contains("apply refuses this plan"),
        "{}",
        apply.stderr
    );
    assert_eq!(p.files(), before);
}

#[test]
fn deleted_seeds_are_found_by_plan_and_refused_by_apply() {
    let p = applied();
    for address in ["signing_key.O2/A/main#v1", "account.O2/sales#v1"] {
        fs::remove_file(seed_file(&p, address)).unwrap();
    }
    // The users' seeds of account A: one bundle, both its users blocked.
    fs::remove_file(bundle_file(&p, "account.O2/A#v1")).unwrap();
    let (plan, apply) = refused(&p);
    insta::assert_snapshot!("deleted_seeds_plan", plan);
    // Each blocker is printed once: in the plan (stdout), with one error
    // line on stderr pointing at it; apply --json shows no plan, so its
    // error lists them.
    let json = p.run(&["apply", "--auto-approve", "--json"]).failure();
    // plan --json: the blockers are the document's, the error points there.
    let doc = p.run_without_identity(&["plan", "--json"]).failure();
    let parsed: serde_json::Value = serde_json::from_str(&doc.stdout).unwrap();
    assert_eq!(parsed["blockers"].as_array().unwrap().len(), 4);
    assert!(
        doc.stderr
            .contains("must be fixed first (the plan's `blockers`)")
            && !doc.stderr.contains("its seed file"),
        "{}",
        doc.stderr
    );
    for (address, problem) in [
        (
            "user.O2/A/U#v1",
            "its seed is missing from the vault: neither its account's seed bundle",
        ),
        (
            "user.O2/A/worker#v1",
            "its seed is missing from the vault: neither its account's seed bundle",
        ),
        ("signing_key.O2/A/main#v1", "its seed file"),
        ("account.O2/sales#v1", "its seed file"),
    ] {
        let blocker = format!("{address}: {problem}");
        for (what, run) in [("plan", &plan), ("apply", &apply)] {
            assert_eq!(run.matches(&blocker).count(), 1, "{what}: {run}");
            assert!(run.contains(&format!("Error: {blocker}")), "{what}: {run}");
        }
        assert!(
            json.stderr.contains(&format!("- {blocker}")),
            "{}",
            json.stderr
        );
    }
    for (what, run) in [("plan", &plan), ("apply", &apply)] {
        assert!(
            run.contains("error: apply refuses this plan: 4 problems in the repository must be fixed first (the `Error:` lines of the plan above); nothing was changed"),
            "{what}: {run}"
        );
    }
    assert!(
        apply.contains("restore the file from git history"),
        "{apply}"
    );
    assert!(
        apply.contains("rotate the key by changing its label"),
        "{apply}"
    );
}

#[test]
fn a_deleted_seed_is_fixed_by_the_rotation_the_plan_shows() {
    let p = applied();
    let old = lock_key(&p, "signing_key.O2/A/main#v1");
    fs::remove_file(seed_file(&p, "signing_key.O2/A/main#v1")).unwrap();
    p.run_without_identity(&["plan"]).failure();
    // The fix the error names: a new label for the role's key.
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.main]",
        "[operators.O2.accounts.A.signing_keys.main]\nkeys = [\"v2\"]",
    );
    let plan = p.run_without_identity(&["plan"]).success();
    assert!(
        plan.stdout.contains("signing_key.O2/A/main#v2"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("user.O2/A/U will be re-issued"),
        "{}",
        plan.stdout
    );
    p.apply();
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    assert!(!lock.contains(&old), "the lost key left the lock");
    let run = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // U's new creds work: the seed of its new signer exists.
    p.creds("A/U");
}

#[test]
fn a_restored_seed_makes_the_plan_clean_again() {
    let p = applied();
    let file = seed_file(&p, "account.O2/A#v1");
    let saved = fs::read(&file).unwrap();
    fs::remove_file(&file).unwrap();
    p.run_without_identity(&["plan"]).failure();
    fs::write(&file, saved).unwrap();
    let run = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn a_damaged_seed_file_is_found_by_plan() {
    let p = applied();
    let file = seed_file(&p, "user.O2/sales/pam#v1");
    fs::write(&file, "-----BEGIN AGE ENCRYPTED FILE-----\nnot age\n").unwrap();
    let (plan, _) = refused(&p);
    assert!(
        plan.contains(
            "Error: user.O2/sales/pam#v1: its seed file <user.O2/sales/pam#v1>.age is damaged"
        ),
        "{plan}"
    );
}

#[test]
fn a_damaged_bundle_blocks_every_user_of_its_account() {
    let p = applied();
    let file = bundle_file(&p, "account.O2/sales#v1");
    fs::write(&file, "-----BEGIN AGE ENCRYPTED FILE-----\nnot age\n").unwrap();
    let (plan, _) = refused(&p);
    for user in ["pam", "joe"] {
        assert!(
            plan.contains(&format!(
                "Error: user.O2/sales/{user}#v1: its account's seed bundle <account.O2/sales#v1>.users.age is damaged"
            )),
            "{plan}"
        );
    }
    assert!(!plan.contains("user.O2/A/"), "{plan}");
}

#[test]
fn a_swapped_seed_file_is_refused_by_creds_and_apply() {
    let p = applied();
    // Two accounts' bundles of user seeds swapped: each names its account
    // inside, and a bundle of another account is refused.
    let (a_users, sales_users) = (
        bundle_file(&p, "account.O2/A#v1"),
        bundle_file(&p, "account.O2/sales#v1"),
    );
    let (a, b) = (fs::read(&a_users).unwrap(), fs::read(&sales_users).unwrap());
    fs::write(&a_users, &b).unwrap();
    fs::write(&sales_users, &a).unwrap();
    let run = p.run(&["creds", "A/U"]).failure();
    assert!(
        run.stderr.contains(
            "another account than the one its name says; bundles must not be renamed or swapped"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // Adding a user to A opens its bundle: apply refuses before any write.
    let before = p.files();
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(
        &p.manifest,
        format!("{text}\n[operators.O2.accounts.A.users.newcomer]\n"),
    )
    .unwrap();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(
        run.stderr
            .contains("bundles must not be renamed or swapped"),
        "{}",
        run.stderr
    );
    let mut after = p.files();
    after.retain(|(f, _)| !f.ends_with("natsform.toml"));
    let mut expected = before.clone();
    expected.retain(|(f, _)| !f.ends_with("natsform.toml"));
    assert_eq!(after, expected);
    fs::write(&p.manifest, text).unwrap();
    fs::write(&a_users, &a).unwrap();
    fs::write(&sales_users, &b).unwrap();
    p.creds("A/U");

    // A swapped signer's seed: apply must not sign with the wrong key.
    let (main, service) = (
        seed_file(&p, "signing_key.O2/A/main#v1"),
        seed_file(&p, "signing_key.O2/A/service#v1"),
    );
    let (a, b) = (fs::read(&main).unwrap(), fs::read(&service).unwrap());
    fs::write(&main, &b).unwrap();
    fs::write(&service, &a).unwrap();
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\npub = { allow = [\"a.>\"] }\n",
    );
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(
        run.stderr.contains("holds a seed for a different key"),
        "{}",
        run.stderr
    );
    assert_eq!(p.files(), before);
}
