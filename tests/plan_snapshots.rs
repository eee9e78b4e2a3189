//! Plans as a reviewer reads them, snapshotted. Each scenario starts from
//! an applied example, edits the manifest, and snapshots `natsform plan`.

mod support;

use support::cli::Project;

#[test]
fn walkthrough_first_plan_creates_every_object_with_its_claims() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    let run = project.run_without_identity(&["plan"]).success();
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn walkthrough_first_plan_as_json() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    let run = project.run_without_identity(&["plan", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["changes"], true);
    assert_eq!(doc["summary"]["create"], 9);
    assert_eq!(doc["actions"][0]["address"], "operator.O2");
    assert_eq!(doc["actions"][0]["action"], "create");
    assert_eq!(doc["new_keys"].as_array().unwrap().len(), 13);
}
