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
fn a_saved_plan_is_refused_after_the_manifest_changes() {
    let (p, plan_file) = saved_plan_for_an_edit();
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(&p.manifest, text.replace("team:managers", "team:owners")).unwrap();
    let before = p.files();
    let run = p.run(&["apply", plan_file.to_str().unwrap()]).failure();
    assert!(run.stderr.contains("stale"), "{}", run.stderr);
    assert_eq!(p.files(), before, "nothing may change");
}

#[test]
fn a_saved_plan_is_refused_after_the_store_changes() {
    let (p, plan_file) = saved_plan_for_an_edit();
    // Someone applies in between.
    p.apply();
    let run = p.run(&["apply", plan_file.to_str().unwrap()]).failure();
    assert!(run.stderr.contains("stale"), "{}", run.stderr);
}
