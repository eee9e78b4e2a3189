//! `plan --out FILE` then `apply FILE`: exactly that plan, or nothing when
//! the manifest, lock or store changed since.

mod support;

use std::fs;
use std::path::PathBuf;

use support::cli::Project;

#[test]
fn a_saved_plan_applies_without_asking_and_converges() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let plan_file = p.path().join("plan.json");
    p.run(&["plan", "--out", plan_file.to_str().unwrap()])
        .success();
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert!(saved["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(saved["summary"]["create"], 9);
    // No terminal and no --auto-approve: a saved plan is the approval.
    p.run(&["apply", plan_file.to_str().unwrap()]).success();
    assert!(p.run(&["plan"]).success().stdout.contains("No changes."));
}

/// The applied walkthrough with one edit, and a plan for it saved to disk.
fn saved_plan_for_an_edit() -> (Project, PathBuf) {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(&p.manifest, text.replace("team:leads", "team:managers")).unwrap();
    let plan_file = p.path().join("plan.json");
    p.run(&["plan", "--out", plan_file.to_str().unwrap()])
        .success();
    (p, plan_file)
}

#[test]
fn a_saved_plan_is_refused_after_the_manifest_changes_and_says_so() {
    let (p, plan_file) = saved_plan_for_an_edit();
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(&p.manifest, text.replace("team:managers", "team:owners")).unwrap();
    let before = p.files();
    let run = natsform_snapshot!(p, ["apply", plan_file.to_str().unwrap()]).failure();
    assert!(
        run.stderr.contains("the manifest natsform.toml"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("lock"), "{}", run.stderr);
    assert_eq!(p.files(), before, "nothing may change");
}

#[test]
fn a_saved_plan_is_refused_after_the_store_changes_and_names_the_file() {
    let (p, plan_file) = saved_plan_for_an_edit();
    // Someone applies in between: joe's JWT is re-issued.
    p.apply();
    let before = p.files();
    let run = natsform_snapshot!(p, ["apply", plan_file.to_str().unwrap()]).failure();
    assert!(
        run.stderr
            .contains("store/O2/accounts/sales/users/joe.jwt (changed)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("manifest natsform.toml"),
        "{}",
        run.stderr
    );
    assert_eq!(p.files(), before, "nothing may change");
}

#[test]
fn a_saved_plan_is_refused_after_the_lock_changes_and_names_it() {
    let (p, plan_file) = saved_plan_for_an_edit();
    let lock = p.path().join("natsform.lock");
    let text = fs::read_to_string(&lock).unwrap();
    fs::write(&lock, format!("# edited by hand\n{text}")).unwrap();
    let before = p.files();
    let run = natsform_snapshot!(p, ["apply", plan_file.to_str().unwrap()]).failure();
    assert!(
        run.stderr.contains("the lock natsform.lock"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("store/"), "{}", run.stderr);
    assert_eq!(p.files(), before, "nothing may change");
}

#[test]
fn many_changed_store_files_are_named_then_counted() {
    let (p, plan_file) = saved_plan_for_an_edit();
    // Someone else adds seven users and applies.
    let text = fs::read_to_string(&p.manifest).unwrap();
    let mut other = text.clone();
    for i in 0..7 {
        other.push_str(&format!("\n[operators.O2.accounts.A.users.extra{i}]\n"));
    }
    fs::write(&p.manifest, &other).unwrap();
    p.apply();
    fs::write(&p.manifest, &text).unwrap();
    let run = natsform_snapshot!(p, ["apply", plan_file.to_str().unwrap()]).failure();
    assert!(
        run.stderr.contains("the lock natsform.lock"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("store/O2/accounts/A/users/extra0.jwt (added)"),
        "{}",
        run.stderr
    );
    // Seven new users and joe's re-issued JWT: five named, three counted.
    assert!(
        run.stderr.contains("and 3 more in the store"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_saved_plan_is_refused_when_the_vault_changes_the_plan() {
    let (p, plan_file) = saved_plan_for_an_edit();
    // The manifest, lock and store are as they were; the sealed seeds of
    // joe's account (its users' bundle) are gone, so the plan now has
    // blockers.
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    let account_key = lock
        .lines()
        .find(|l| l.trim_start().starts_with("\"account.O2/sales#"))
        .and_then(|l| l.split('"').nth(3))
        .expect("the sales account's key in the lock")
        .to_string();
    let joe = p
        .path()
        .join("vault")
        .join(format!("{account_key}.users.age"));
    assert!(joe.is_file(), "joe's seed is in his account's bundle");
    fs::remove_file(joe).unwrap();
    let before = p.files();
    let run = natsform_snapshot!(p, ["apply", plan_file.to_str().unwrap()]).failure();
    assert!(
        run.stderr
            .contains("the manifest, lock and store are as they were"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("blockers"), "{}", run.stderr);
    assert_eq!(p.files(), before, "nothing may change");
}
