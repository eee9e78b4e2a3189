//! Turning a parser's error (serde through `toml` or `serde_yaml`) into one
//! that names the object at fault and the likely fix: an unknown field gets
//! a "did you mean", a field indented (or put in a table) one level too
//! high is named as such, with the object it probably belongs under.
//!
//! What the model's objects and fields are comes from the model itself:
//! the field lists of serde's messages and the JSON Schema schemars derives
//! from the same types (never a hand-written list that could drift). Only
//! errors pay for any of this.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;

use super::diagnostic::did_you_mean;
use super::load::Format;
use super::spans::SourceMap;

/// What [`explain`] makes of a parser error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Explained {
    /// The object address (key path, dotted), when found.
    pub address: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

/// One struct of the model: its fields and, for each, the struct its
/// value holds (directly, optionally, or as the values of a map or list).
#[derive(Debug, Default)]
struct Object {
    fields: BTreeMap<String, Option<String>>,
}

/// The model's structs by schema name; `""` is the manifest itself.
fn model() -> &'static BTreeMap<String, Object> {
    static MODEL: OnceLock<BTreeMap<String, Object>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let schema = serde_json::to_value(schemars::schema_for!(super::model::Manifest))
            .unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        out.insert(String::new(), object_of(&schema));
        if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
            for (name, def) in defs {
                if def.get("properties").is_some() {
                    out.insert(name.clone(), object_of(def));
                }
            }
        }
        out
    })
}

fn object_of(schema: &Value) -> Object {
    let fields = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| (name.clone(), referenced(s)))
                .collect()
        })
        .unwrap_or_default();
    Object { fields }
}

/// The struct a field's schema refers to: `$ref`, an optional `$ref`
/// (`anyOf` with null), or the items/values of a list or map.
fn referenced(s: &Value) -> Option<String> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().map(str::to_string);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            if let Some(found) = list.iter().find_map(referenced) {
                return Some(found);
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = s.get(key).filter(|v| v.is_object()) {
            return referenced(inner);
        }
    }
    None
}

/// The struct whose fields are exactly `names` (what serde lists after
/// "expected one of").
fn object_with_fields(names: &[String]) -> Option<(&'static str, &'static Object)> {
    let want: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    model()
        .iter()
        .find(|(_, o)| o.fields.keys().map(String::as_str).collect::<BTreeSet<_>>() == want)
        .map(|(n, o)| (n.as_str(), o))
}

/// "SigningKey" → "signing key"; the manifest itself → "manifest".
fn noun(struct_name: &str) -> String {
    if struct_name.is_empty() {
        return "manifest".into();
    }
    let mut out = String::new();
    for (i, c) in struct_name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        // "a user", "a unit": no word of the model starts with a vowel "u".
        Some('a' | 'e' | 'i' | 'o') => "an",
        _ => "a",
    }
}

/// The names serde lists after "expected": "one of `a`, `b`, `c`",
/// "`a` or `b`", or "`a`".
fn expected_names(rest: &str) -> Vec<String> {
    let Some(i) = rest.find("expected ") else {
        return Vec::new();
    };
    rest[i..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The first backquoted name in `text`.
fn quoted_name(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// A key path as serde_yaml prints it (`a.b[0].c`).
fn yaml_style(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if !out.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() {
            out.push_str(&format!("[{p}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

/// An address as shown: the key path, dotted.
pub(crate) fn address(path: &[String]) -> String {
    path.join(".")
}

/// serde_yaml starts a message with the key path (`a.b.c: …`); splits it
/// off when it is one.
fn split_yaml_path(raw: &str) -> (Option<&str>, &str) {
    if let Some(i) = raw.find(": ") {
        let head = &raw[..i];
        if !head.is_empty() && !head.contains(char::is_whitespace) && !head.contains('`') {
            return (Some(head), &raw[i + 2..]);
        }
    }
    (None, raw)
}

/// Makes sense of `raw`, a parser message for `line` of the manifest.
pub(crate) fn explain(
    format: Format,
    spans: &SourceMap,
    raw: &str,
    line: Option<usize>,
) -> Explained {
    let (yaml_path, rest) = match format {
        Format::Yaml => split_yaml_path(raw),
        Format::Toml => (None, raw),
    };
    let candidates = line.map(|l| spans.paths_at(l)).unwrap_or_default();
    let plain = |address: Option<String>| Explained {
        address,
        message: rest.to_string(),
        help: None,
    };
    if rest.starts_with("unknown field `") {
        let Some(field) = quoted_name(rest) else {
            return plain(yaml_path.map(str::to_string));
        };
        let expected = expected_names(rest);
        // The key itself: on the error's line, named like the field, under
        // the path serde_yaml printed when it printed one.
        let key = candidates
            .iter()
            .filter(|p| p.last().map(String::as_str) == Some(field))
            .find(|p| yaml_path.is_none_or(|y| yaml_style(&p[..p.len() - 1]) == y))
            .cloned();
        let object: Option<Vec<String>> = key.as_ref().map(|k| k[..k.len() - 1].to_vec());
        let address = object
            .as_ref()
            .filter(|o| !o.is_empty())
            .map(|o| address(o))
            .or_else(|| yaml_path.map(str::to_string));
        let found = object_with_fields(&expected);
        let kind = found
            .map(|(n, _)| noun(n))
            .unwrap_or_else(|| "object".into());
        let help = object
            .as_ref()
            .and_then(|o| misplaced(format, spans, o, &expected, &kind))
            .or_else(|| {
                let key = key.as_ref()?;
                let (_, obj) = found?;
                belongs_to_previous(format, spans, key, obj)
            })
            .or_else(|| {
                did_you_mean(field, expected.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
            })
            .unwrap_or_else(|| {
                if expected.is_empty() {
                    "remove it: this object has no fields".to_string()
                } else {
                    format!(
                        "the fields of {} {kind} are {}; see the manifest reference in README.md",
                        article(&kind),
                        quoted_list(&expected)
                    )
                }
            });
        return Explained {
            address,
            message: format!("unknown field `{field}` in this {kind}"),
            help: Some(help),
        };
    }
    if rest.starts_with("unknown variant `") {
        let address = yaml_path.map(str::to_string).or_else(|| {
            candidates
                .iter()
                .max_by_key(|p| p.len())
                .map(|p| address(p))
        });
        let help = quoted_name(rest).and_then(|v| {
            let expected = expected_names(rest);
            did_you_mean(v, expected.iter().map(String::as_str))
                .map(|m| format!("did you mean `{m}`? The values are case-sensitive"))
        });
        return Explained {
            address,
            message: rest.to_string(),
            help: Some(
                help.unwrap_or_else(|| {
                    "use one of the values listed; they are case-sensitive".into()
                }),
            ),
        };
    }
    if let Some(field) = rest
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        let address = yaml_path.map(str::to_string).or_else(|| {
            candidates
                .iter()
                .max_by_key(|p| p.len())
                .map(|p| address(p))
        });
        return Explained {
            address,
            message: rest.to_string(),
            help: Some(format!(
                "add `{field}` to this object; see the manifest reference in README.md"
            )),
        };
    }
    // The key at fault: the one serde_yaml named, or the deepest on the line.
    let key = match yaml_path {
        Some(y) => candidates.iter().find(|p| yaml_style(p) == y).cloned(),
        None => candidates.iter().max_by_key(|p| p.len()).cloned(),
    };
    let address = key
        .as_ref()
        .map(|k| address(k))
        .or_else(|| yaml_path.map(str::to_string));
    // "invalid type: …, expected struct User" on a key named like a field
    // of User: a field one level too high.
    if let (Some(k), Some(i)) = (&key, rest.find("expected struct ")) {
        let struct_name = rest[i + "expected struct ".len()..]
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("");
        if let Some(obj) = model().get(struct_name) {
            let names: Vec<String> = obj.fields.keys().cloned().collect();
            let kind = noun(struct_name);
            let what = match format {
                Format::Yaml => "a mapping of its fields",
                Format::Toml => "a table of its fields",
            };
            let message = rest.replace(
                &format!("expected struct {struct_name}"),
                &format!("expected {} {kind} ({what})", article(&kind)),
            );
            return Explained {
                address,
                message,
                help: misplaced(format, spans, k, &names, &kind),
            };
        }
    }
    plain(address)
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// When the object at `object` is named like one of its own type's fields
/// (`users: {alice: …, pub: {allow: …}}`), it is most likely that field of
/// the object written before it, one level too high.
fn misplaced(
    format: Format,
    spans: &SourceMap,
    object: &[String],
    fields: &[String],
    kind: &str,
) -> Option<String> {
    let (name, container) = object.split_last()?;
    if container.is_empty() || !fields.iter().any(|f| f == name) {
        return None;
    }
    let a = article(kind);
    let Some(owner) = spans.sibling_before(object) else {
        return Some(format!(
            "`{name}` is a field of {a} {kind}, but it is written where {a} {kind} is \
             named; move it into the {kind} it belongs to"
        ));
    };
    let mut fixed = container.to_vec();
    fixed.push(owner.clone());
    Some(match format {
        Format::Yaml => format!(
            "`{name}` is indented as if it were {a} {kind}; did you mean to indent it under `{}.{owner}`?",
            container.last().map(String::as_str).unwrap_or("")
        ),
        Format::Toml => {
            fixed.push(name.clone());
            format!(
                "`{name}` is written as if it were {a} {kind}; did you mean the table `[{}]`?",
                address(&fixed)
            )
        }
    })
}

/// An unknown field that is a field of what the key before it holds
/// (`pub:` with no value, then `allow:` at the same indentation).
fn belongs_to_previous(
    format: Format,
    spans: &SourceMap,
    key: &[String],
    object: &Object,
) -> Option<String> {
    let (field, parent) = key.split_last()?;
    let previous = spans.sibling_before(key)?;
    let holds = object.fields.get(&previous)?.as_ref()?;
    if !model().get(holds)?.fields.contains_key(field) {
        return None;
    }
    Some(match format {
        Format::Yaml => format!(
            "`{field}` is a field of `{previous}`, the key above it; did you mean to indent it under `{}.{previous}`?",
            parent.last().map(String::as_str).unwrap_or("")
        ),
        Format::Toml => {
            let mut table = parent.to_vec();
            table.push(previous.clone());
            format!(
                "`{field}` is a field of `{previous}`; did you mean `{previous}.{field}` (or the table `[{}]`)?",
                address(&table)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_comes_from_the_schema() {
        let m = model();
        assert!(m[""].fields.contains_key("operators"));
        assert_eq!(
            m["User"].fields.get("pub"),
            Some(&Some("SubjectPermission".to_string()))
        );
        assert_eq!(
            m["Account"].fields.get("users"),
            Some(&Some("User".to_string()))
        );
        assert_eq!(noun("SigningKey"), "signing key");
    }

    #[test]
    fn each_struct_of_the_model_has_its_own_field_list() {
        // serde's "expected one of" list names the struct: it must be unique.
        let m = model();
        let mut seen = BTreeMap::new();
        for (name, o) in m {
            let fields: Vec<&String> = o.fields.keys().collect();
            if let Some(other) = seen.insert(fields, name) {
                panic!("{other} and {name} have the same fields");
            }
        }
        assert!(m.len() > 10, "{:?}", m.keys());
    }

    #[test]
    fn serde_lists_are_read() {
        assert_eq!(
            expected_names("unknown field `x`, expected one of `a`, `b_c`"),
            vec!["a", "b_c"]
        );
        assert_eq!(expected_names("unknown field `x`, expected `a`"), vec!["a"]);
        assert_eq!(
            expected_names("unknown field `x`, expected `allow` or `deny`"),
            vec!["allow", "deny"]
        );
        assert!(expected_names("unknown field `x`, there are no fields").is_empty());
        assert_eq!(
            split_yaml_path("a.b[0]: unknown field `x`"),
            (Some("a.b[0]"), "unknown field `x`")
        );
        assert_eq!(
            split_yaml_path("invalid type: string"),
            (None, "invalid type: string")
        );
        assert_eq!(
            yaml_style(&["a".into(), "b".into(), "0".into(), "c".into()]),
            "a.b[0].c"
        );
    }
}
