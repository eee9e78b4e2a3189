//! A stable, human rendering of claims for plan diffs: YAML-like, one value
//! per line, public keys annotated with the address that owns them, times
//! (`exp`, `nbf`, revocations) as RFC 3339 dates in UTC, and none of the
//! fields that change on every signing (`iat`, `jti`, `iss`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::keyref::NEW_KEY_PREFIX;
use crate::safepath;

/// Public key → key address, for annotations.
pub type KeyNames<'a> = BTreeMap<&'a str, &'a str>;

/// Looks up the key address that owns a public key: borrowed
/// ([`KeyNames`]) or owned (a plan's `key_names`).
pub trait Names: Sync {
    fn name_of(&self, public: &str) -> Option<&str>;
}

impl Names for KeyNames<'_> {
    fn name_of(&self, public: &str) -> Option<&str> {
        self.get(public).copied()
    }
}

impl Names for BTreeMap<String, String> {
    fn name_of(&self, public: &str) -> Option<&str> {
        self.get(public).map(String::as_str)
    }
}

/// Fields left out of the rendering: they change on every signing, or are
/// constant on the wire (`type`, `version`).
const SKIPPED_TOP: &[&str] = &["iat", "jti", "iss"];
const SKIPPED_NATS: &[&str] = &["type", "version"];

/// A unix time as people read it: RFC 3339 in UTC, whole seconds
/// (`2027-02-23T10:00:00Z`). A time no date can carry (beyond year 9999,
/// or before year -9999: a hostile JWT can hold any number) is shown as
/// the number, saying so.
pub fn date(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{secs} (unix seconds, not a date)"),
    }
}

/// A relative expiry as the manifest says it: `90d after each issue`.
pub fn rule(valid_for: i64) -> String {
    let validity =
        crate::manifest::duration::Duration::from_nanos(valid_for.saturating_mul(1_000_000_000));
    format!("{validity} after each issue")
}

/// Top-level claims that hold a unix time.
const TIMES_TOP: &[&str] = &["exp", "nbf", "iat"];

/// Renders wire claims (full payload JSON) as sorted-by-schema text lines.
pub fn render(claims: &Value, names: &(impl Names + ?Sized)) -> String {
    let mut out = String::new();
    if let Value::Object(top) = claims {
        for (k, v) in top {
            if SKIPPED_TOP.contains(&k.as_str()) {
                continue;
            }
            if k == "nats" {
                if let Value::Object(nats) = v {
                    for (nk, nv) in nats {
                        if SKIPPED_NATS.contains(&nk.as_str()) {
                            continue;
                        }
                        field(&mut out, 0, nk, nv, names);
                    }
                }
            } else if TIMES_TOP.contains(&k.as_str()) {
                let _ = writeln!(out, "{}: {}", top_level_label(k), time(v, names));
            } else {
                field(&mut out, 0, top_level_label(k), v, names);
            }
        }
    }
    out
}

/// Top-level JWT claims get their meaning as a label: `sub` would read as
/// the subscribe permissions that users carry inside `nats`.
fn top_level_label(key: &str) -> &str {
    match key {
        "sub" => "subject",
        "aud" => "audience",
        "exp" => "expires",
        "nbf" => "not_before",
        "iat" => "issued",
        other => other,
    }
}

fn field(out: &mut String, indent: usize, key: &str, value: &Value, names: &(impl Names + ?Sized)) {
    let pad = "  ".repeat(indent);
    let key = key_text(key);
    match value {
        Value::Object(m) if m.is_empty() => {
            let _ = writeln!(out, "{pad}{key}: {{}}");
        }
        Value::Object(m) if key == "revocations" => {
            // Account revocations (users) and an export's (importers):
            // key or `*` → unix time.
            let _ = writeln!(out, "{pad}{key}:");
            for (k, v) in m {
                let _ = writeln!(out, "{pad}  {}: {}", key_text(k), time(v, names));
            }
        }
        Value::Object(m) => {
            let _ = writeln!(out, "{pad}{key}:");
            for (k, v) in m {
                field(out, indent + 1, k, v, names);
            }
        }
        Value::Array(a) if a.is_empty() => {
            let _ = writeln!(out, "{pad}{key}: []");
        }
        Value::Array(a) => {
            let _ = writeln!(out, "{pad}{key}:");
            let mut items: Vec<&Value> = a.iter().collect();
            if key == "signing_keys" {
                // On the wire they are sorted by public key, which reshuffles
                // on every rotation; by address (role) a rotation reads as
                // one changed entry.
                items.sort_by_key(|v| signing_key_order(v, names));
            }
            for item in items {
                match item {
                    Value::Object(m) => {
                        let mut first = true;
                        for (k, v) in m {
                            let mut line = String::new();
                            field(&mut line, indent + 2, k, v, names);
                            if first {
                                // `- key: value` on the first line of the item.
                                let trimmed = line.trim_start_matches(' ');
                                let _ = write!(out, "{pad}  - {trimmed}");
                                first = false;
                            } else {
                                out.push_str(&line);
                            }
                        }
                    }
                    other => {
                        let _ = writeln!(out, "{pad}  - {}", scalar(other, names));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{key}: {}", scalar(other, names));
        }
    }
}

fn signing_key_order(v: &Value, names: &(impl Names + ?Sized)) -> String {
    let key = match v {
        Value::String(s) => s.as_str(),
        Value::Object(m) => m.get("key").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    let address = key
        .strip_prefix(NEW_KEY_PREFIX)
        .map(|a| a.trim_end_matches(')').to_string());
    address
        .or_else(|| names.name_of(key).map(|a| a.to_string()))
        .unwrap_or_else(|| key.to_string())
}

/// A value that holds a unix time: as a date when it is an integer,
/// anything else as it is (a string such as `90d after each issue`, or
/// whatever a hostile JWT holds).
fn time(v: &Value, names: &(impl Names + ?Sized)) -> String {
    match v.as_i64() {
        Some(secs) => date(secs),
        None => scalar(v, names),
    }
}

fn scalar(v: &Value, names: &(impl Names + ?Sized)) -> String {
    match v {
        Value::String(s) if s.chars().any(needs_escape) => quote(s),
        Value::String(s) if s.starts_with(NEW_KEY_PREFIX) => s.clone(),
        Value::String(s) => match names.name_of(s.as_str()) {
            Some(addr) => format!("{s}  # {}", safepath::escape_line(addr)),
            None => quote(s),
        },
        other => other.to_string(),
    }
}

/// Characters that force a string into quotes, escaped: newlines (which
/// would break the one-value-per-line structure) and every character a
/// terminal could act on ([`safepath::is_unsafe_char`]).
fn needs_escape(c: char) -> bool {
    safepath::is_unsafe_char(c)
}

/// A map key as shown: as is, unless it holds characters that must be
/// escaped (keys of a stored JWT are whatever its author wrote).
fn key_text(key: &str) -> Cow<'_, str> {
    if key.chars().any(needs_escape) {
        Cow::Owned(quote(key))
    } else {
        Cow::Borrowed(key)
    }
}

/// Quotes a string only when YAML would read it differently.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with([
            '>', '*', '&', '!', '|', '{', '[', '#', '-', '?', ':', '\'', '"', '%', '@', '`', ' ',
        ])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(' ')
        && !matches!(s, "true" | "false" | "null" | "~")
        && s.parse::<f64>().is_err()
        && !s.chars().any(needs_escape);
    if plain {
        s.to_string()
    } else {
        double_quoted(s)
    }
}

/// `"…"` with `\\`, `\"`, `\n`, `\t`, `\r` and every other control or
/// direction-changing character as `\u{1b}` (Rust's notation; also what
/// natsform's messages use), so nothing in a claim can act on a terminal.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nested_claims_stably_with_key_names() {
        let claims = json!({
            "jti": "X", "iat": 1, "iss": "OABC", "name": "A", "sub": "AKEY",
            "nats": {"limits": {"conn": -1}, "signing_keys": ["SK1", {"kind": "user_scope", "key": "SK2", "role": "svc", "template": {"pub": {"deny": [">"]}, "sub": {}}}], "type": "account", "version": 2}
        });
        let mut names = KeyNames::new();
        names.insert("AKEY", "account.O/A#v1");
        let text = render(&claims, &names);
        assert_eq!(
            text,
            "name: A\nsubject: AKEY  # account.O/A#v1\nlimits:\n  conn: -1\nsigning_keys:\n  - SK1\n  - kind: user_scope\n    key: SK2\n    role: svc\n    template:\n      pub:\n        deny:\n          - \">\"\n      sub: {}\n"
        );
    }

    #[test]
    fn times_are_rfc3339_utc_dates() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(date(-1), "1969-12-31T23:59:59Z");
        assert_eq!(date(4_102_444_800), "2100-01-01T00:00:00Z");
        // The last second a date can carry (late in year 9999), and beyond.
        let last = jiff::Timestamp::MAX.as_second();
        assert!(date(last).starts_with("9999-12-"), "{}", date(last));
        assert_eq!(
            date(last + 1),
            format!("{} (unix seconds, not a date)", last + 1)
        );
        assert_eq!(
            date(i64::MAX),
            format!("{} (unix seconds, not a date)", i64::MAX)
        );
    }

    #[test]
    fn a_relative_rule_reads_as_the_manifest_says_it() {
        assert_eq!(rule(90 * 86_400), "90d after each issue");
        assert_eq!(rule(36 * 3_600), "36h after each issue");
        assert_eq!(rule(90), "90s after each issue");
        // Never overflows, whatever a caller passes.
        assert!(rule(i64::MAX).ends_with(" after each issue"));
    }

    #[test]
    fn expiry_not_before_and_revocations_render_as_dates() {
        let claims = json!({
            "exp": 1_807_776_000, "iat": 1_800_000_000, "nbf": 1_800_000_000, "name": "A",
            "nats": {
                "revocations": {"UKEY": 1_800_000_000, "*": 0, "UBAD": "soon\u{1b}"},
                "exports": [{"subject": "s", "revocations": {"AKEY": 1_800_000_001}}],
                "type": "account", "version": 2
            }
        });
        let text = render(&claims, &KeyNames::new());
        assert_eq!(
            text,
            "expires: 2027-04-15T08:00:00Z\nnot_before: 2027-01-15T08:00:00Z\nname: A\nrevocations:\n  UKEY: 2027-01-15T08:00:00Z\n  *: 1970-01-01T00:00:00Z\n  UBAD: \"soon\\u{1b}\"\nexports:\n  - subject: s\n    revocations:\n      AKEY: 2027-01-15T08:00:01Z\n"
        );
        // A string where a time belongs (a relative rule) is shown as is.
        let text = render(&json!({"exp": "90d after each issue"}), &KeyNames::new());
        assert_eq!(text, "expires: 90d after each issue\n");
        // A time out of range, or not an integer, is never hidden.
        let text = render(&json!({"exp": 1e300}), &KeyNames::new());
        assert_eq!(text, "expires: 1e+300\n");
    }
}
