//! Effective permissions of a user of a scoped signing key, computed the way
//! nats-server computes them at connect time: the role's template with every
//! `{{…}}` placeholder expanded for that user.
//!
//! Semantics (nats-jwt-facts §7): placeholders expand per token; `tag(k)`
//! and `account-tag(k)` yield every value `v` of a tag `k:v` (key lower-cased,
//! prefix matched case-sensitively); several values give the Cartesian
//! product over distinct placeholders; an entry with a placeholder that has
//! no value is dropped from an allow list and makes the connection fail in a
//! deny list; when a non-empty allow list expands to nothing, the server
//! denies `>` in that direction.

use serde_json::{json, Map, Value};

use crate::manifest::subject::check_subject;

/// What a template can refer to.
pub struct UserContext<'a> {
    pub name: &'a str,
    pub subject: &'a str,
    pub account_name: &'a str,
    pub account_subject: &'a str,
    pub user_tags: &'a [String],
    pub account_tags: &'a [String],
}

/// The outcome of expanding a template for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The template with expanded subject lists.
    pub permissions: Value,
    /// Deny entries that could not expand: nats-server refuses the connection.
    pub refused: Vec<String>,
}

/// Expands `template` (a scope template as wire JSON) for `ctx`.
pub fn expand(template: &Value, ctx: &UserContext) -> Effective {
    let mut out = template.clone();
    let mut refused = Vec::new();
    for dir in ["pub", "sub"] {
        let Some(perm) = out.get_mut(dir).and_then(Value::as_object_mut) else {
            continue;
        };
        let mut allow_emptied = false;
        for list in ["allow", "deny"] {
            let Some(entries) = perm.get(list).and_then(Value::as_array) else {
                continue;
            };
            let mut expanded = Vec::new();
            for entry in entries.iter().filter_map(Value::as_str) {
                let (subjects, complete) = expand_entry(entry, ctx, dir == "sub");
                if !complete && list == "deny" {
                    refused.push(entry.to_string());
                }
                expanded.extend(subjects);
            }
            if list == "allow" && !entries.is_empty() && expanded.is_empty() {
                allow_emptied = true;
            }
            perm.insert(list.to_string(), json!(expanded));
        }
        if allow_emptied {
            let deny = perm.entry("deny").or_insert_with(|| json!([]));
            if let Value::Array(d) = deny {
                if !d.iter().any(|v| v == ">") {
                    d.push(json!(">"));
                }
            }
        }
        perm.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
    }
    Effective {
        permissions: out,
        refused,
    }
}

/// Expands one entry; returns the valid subjects and whether every
/// placeholder had a value.
fn expand_entry(entry: &str, ctx: &UserContext, queue_allowed: bool) -> (Vec<String>, bool) {
    let placeholders = placeholders(entry);
    if placeholders.is_empty() {
        return (vec![entry.to_string()], true);
    }
    let mut choices: Vec<(String, Vec<String>)> = Vec::new();
    for p in placeholders {
        if choices.iter().any(|(q, _)| *q == p) {
            continue;
        }
        let values = values_of(&p, ctx);
        if values.is_empty() {
            return (Vec::new(), false);
        }
        choices.push((p, values));
    }
    let mut results = vec![entry.to_string()];
    for (p, values) in &choices {
        results = results
            .iter()
            .flat_map(|r| values.iter().map(move |v| r.replace(p.as_str(), v)))
            .collect();
    }
    let valid = results
        .into_iter()
        .filter(|s| {
            let subject = if queue_allowed {
                s.split(' ').next().unwrap_or(s)
            } else {
                s
            };
            check_subject(subject, true).is_ok()
        })
        .collect();
    (valid, true)
}

/// The `{{…}}` placeholders of an entry, in order.
fn placeholders(entry: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = entry;
    while let Some(start) = rest.find("{{") {
        match rest[start..].find("}}") {
            Some(end) => {
                out.push(rest[start..start + end + 2].to_string());
                rest = &rest[start + end + 2..];
            }
            None => break,
        }
    }
    out
}

fn values_of(placeholder: &str, ctx: &UserContext) -> Vec<String> {
    let op = placeholder
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim();
    let tag_values = |tags: &[String], key: &str| -> Vec<String> {
        let prefix = format!("{}:", key.to_lowercase());
        tags.iter()
            .filter_map(|t| t.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    };
    let non_empty = |s: &str| {
        if s.is_empty() {
            Vec::new()
        } else {
            vec![s.to_string()]
        }
    };
    match op {
        "name()" => non_empty(ctx.name),
        "subject()" => non_empty(ctx.subject),
        "account-name()" => non_empty(ctx.account_name),
        "account-subject()" => non_empty(ctx.account_subject),
        _ => {
            if let Some(key) = op.strip_prefix("tag(").and_then(|k| k.strip_suffix(')')) {
                tag_values(ctx.user_tags, key)
            } else if let Some(key) = op
                .strip_prefix("account-tag(")
                .and_then(|k| k.strip_suffix(')'))
            {
                tag_values(ctx.account_tags, key)
            } else {
                Vec::new()
            }
        }
    }
}

/// The scope template of `key` in account claims (wire JSON), if `key` is a
/// scoped signing key of that account; also its role name.
pub fn scope_of<'a>(account_claims: &'a Value, key: &str) -> Option<(&'a str, &'a Value)> {
    account_claims
        .pointer("/nats/signing_keys")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.get("key").and_then(Value::as_str) == Some(key))
        .and_then(|o| {
            Some((
                o.get("role").and_then(Value::as_str).unwrap_or(""),
                o.get("template")?,
            ))
        })
}

/// Tags of claims (wire JSON) as stored.
pub fn tags_of(claims: &Value) -> Vec<String> {
    claims
        .pointer("/nats/tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The rendering block appended to a scoped user's claims in a plan.
pub fn block(role: &str, effective: &Effective) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!(role));
    if let Value::Object(p) = &effective.permissions {
        for (k, v) in p {
            m.insert(k.clone(), v.clone());
        }
    }
    let pub_allow = effective
        .permissions
        .pointer("/pub/allow")
        .and_then(Value::as_array);
    if effective.permissions.get("resp").is_some() && pub_allow.is_none_or(|a| a.is_empty()) {
        // nats-server turns an empty pub.allow into "nothing" when resp is set.
        m.insert(
            "publish".into(),
            json!("only replies to requests it receives (resp is set, pub.allow is empty)"),
        );
    }
    if !effective.refused.is_empty() {
        m.insert("connection_refused_by".into(), json!(effective.refused));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(name: &'a str, tags: &'a [String]) -> UserContext<'a> {
        UserContext {
            name,
            subject: "UKEY",
            account_name: "sales",
            account_subject: "AKEY",
            user_tags: tags,
            account_tags: &[],
        }
    }

    #[test]
    fn the_walkthrough_template_expands_per_user() {
        let t =
            json!({"pub": {}, "sub": {"allow": ["{{account-name()}}.{{tag(team)}}.{{name()}}.>"]}});
        let tags = vec!["team:support".to_string()];
        let e = expand(&t, &ctx("pam", &tags));
        assert_eq!(
            e.permissions["sub"]["allow"],
            json!(["sales.support.pam.>"])
        );
        assert!(e.refused.is_empty());
    }

    #[test]
    fn several_tag_values_give_one_subject_each() {
        let t = json!({"sub": {"allow": ["t.{{tag(dept)}}"]}});
        let tags = vec!["dept:a".to_string(), "dept:b".to_string()];
        assert_eq!(
            expand(&t, &ctx("u", &tags)).permissions["sub"]["allow"],
            json!(["t.a", "t.b"])
        );
    }

    #[test]
    fn a_missing_tag_empties_allow_into_deny_everything() {
        let t = json!({"pub": {"allow": ["x.{{tag(team)}}"]}});
        let e = expand(&t, &ctx("u", &[]));
        assert_eq!(e.permissions["pub"], json!({"deny": [">"]}));
    }

    #[test]
    fn a_missing_tag_in_deny_refuses_the_connection() {
        let t = json!({"pub": {"deny": ["x.{{tag(team)}}"]}});
        assert_eq!(
            expand(&t, &ctx("u", &[])).refused,
            vec!["x.{{tag(team)}}".to_string()]
        );
    }

    #[test]
    fn names_that_make_invalid_subjects_are_dropped() {
        let t = json!({"pub": {"allow": ["in.{{name()}}", "other"]}});
        assert_eq!(
            expand(&t, &ctx("a b", &[])).permissions["pub"]["allow"],
            json!(["other"])
        );
    }
}
