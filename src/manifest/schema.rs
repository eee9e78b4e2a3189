//! The manifest's JSON Schema, generated from the serde model so that
//! editors (yaml-language-server, taplo) and CI validate exactly what
//! natsform parses. Descriptions come from the model's doc comments.

use super::model::Manifest;

/// The schema as pretty JSON with a trailing newline: the exact bytes of
/// `schemas/natsform.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialize");
    text.push('\n');
    text
}
