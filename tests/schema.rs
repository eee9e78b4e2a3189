//! `schemas/natsform.schema.json` is generated from the manifest types; it
//! must match what `natsform schema` prints, and describe every field.
//!
//! Regenerate it after changing the model:
//!     cargo run -- schema > schemas/natsform.schema.json

mod support;

use serde_json::Value;
use support::cli::{repo_root, Project};

fn printed_schema() -> String {
    Project::empty()
        .natsform(&["schema"])
        .without_manifest_flag()
        .run()
        .success()
        .stdout
}

#[test]
fn the_committed_schema_is_what_natsform_schema_prints() {
    let committed =
        std::fs::read_to_string(repo_root().join("schemas/natsform.schema.json")).unwrap();
    assert!(
        committed == printed_schema(),
        "schemas/natsform.schema.json is out of date with the manifest types; regenerate it:\n    cargo run -- schema > schemas/natsform.schema.json"
    );
}

#[test]
fn every_field_of_the_schema_has_a_description() {
    let schema: Value = serde_json::from_str(&printed_schema()).unwrap();
    let mut missing = Vec::new();
    let mut objects = vec![("(root)".to_string(), &schema)];
    for (name, def) in schema["$defs"].as_object().unwrap() {
        objects.push((name.clone(), def));
    }
    for (name, obj) in objects {
        if let Some(props) = obj["properties"].as_object() {
            for (field, prop) in props {
                if prop.get("description").is_none() {
                    missing.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}
