//! NATS subject syntax and permission templates, checked the strict way
//! (nats-io/jwt HEAD rules plus what nats-server 2.9 can expand), so a
//! manifest that validates is accepted by every supported server.

/// A placeholder that nats-server expands when a user of a scoped signing key connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Name,
    Subject,
    AccountName,
    AccountSubject,
    Tag(String),
    AccountTag(String),
}

/// Why a subject or permission entry is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectError {
    pub message: String,
    pub help: String,
}

fn err(message: impl Into<String>, help: impl Into<String>) -> SubjectError {
    SubjectError {
        message: message.into(),
        help: help.into(),
    }
}

/// Checks a plain subject (no templates). `wildcards`: whether `*`/`>` may appear.
pub fn check_subject(subject: &str, wildcards: bool) -> Result<(), SubjectError> {
    check_tokens(subject, wildcards, false).map(|_| ())
}

/// Whether `subject` has a `*` or `>` token.
pub fn has_wildcard_token(subject: &str) -> bool {
    subject.split('.').any(|t| t == "*" || t == ">")
}

/// Checks a permission entry: a subject, or for `sub` lists `subject queue`.
/// With `templates`, whole-token `{{…}}` placeholders are allowed and returned.
pub fn check_permission_entry(
    entry: &str,
    allow_queue: bool,
    templates: bool,
) -> Result<Vec<Placeholder>, SubjectError> {
    let parts: Vec<&str> = entry.split(' ').collect();
    match parts.as_slice() {
        [subject] => check_tokens(subject, true, templates),
        [subject, queue] if allow_queue => {
            if queue.is_empty() {
                return Err(err(
                    format!("`{entry}` has an empty queue name"),
                    "write `subject queue` with exactly one space",
                ));
            }
            let mut found = check_tokens(subject, true, templates)?;
            found.extend(check_tokens(queue, true, templates)?);
            Ok(found)
        }
        [_, _] => Err(err(
            format!("`{entry}` contains a space"),
            "publish permissions take a subject only; a queue group (`subject queue`) is allowed in `sub` lists",
        )),
        _ => Err(err(
            format!("`{entry}` has more than one space"),
            "a permission entry is `subject` or, in `sub` lists, `subject queue`",
        )),
    }
}

fn check_tokens(
    subject: &str,
    wildcards: bool,
    templates: bool,
) -> Result<Vec<Placeholder>, SubjectError> {
    if subject.is_empty() {
        return Err(err("empty subject", "write a subject such as `orders.>`"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            format!("subject `{subject}` contains whitespace"),
            "subjects are dot-separated tokens without spaces",
        ));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(err(
                format!("subject `{subject}` has an empty token"),
                "remove the leading, trailing or doubled `.`",
            ));
        }
        if token.contains("{{") || token.contains("}}") {
            if !templates {
                return Err(err(
                    format!("subject `{subject}` contains a template"),
                    "templates such as {{name()}} only work in the permissions of a scoped signing key",
                ));
            }
            found.push(parse_placeholder(subject, token)?);
            continue;
        }
        let is_last = i + 1 == tokens.len();
        if token.contains('>') {
            if *token != ">" || !is_last {
                return Err(err(
                    format!("subject `{subject}` misplaces `>`"),
                    "`>` must be a whole token and the last one, as in `orders.>`",
                ));
            }
            if !wildcards {
                return Err(err(
                    format!("subject `{subject}` may not contain wildcards"),
                    "use a literal subject",
                ));
            }
        }
        if token.contains('*') {
            if *token != "*" {
                return Err(err(
                    format!("subject `{subject}` misplaces `*`"),
                    "`*` must be a whole token, as in `orders.*.created`",
                ));
            }
            if !wildcards {
                return Err(err(
                    format!("subject `{subject}` may not contain wildcards"),
                    "use a literal subject",
                ));
            }
        }
    }
    Ok(found)
}

const FUNCTIONS: &str = "{{name()}}, {{subject()}}, {{account-name()}}, {{account-subject()}}, {{tag(key)}}, {{account-tag(key)}}";

fn parse_placeholder(subject: &str, token: &str) -> Result<Placeholder, SubjectError> {
    let inner = token
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .ok_or_else(|| {
            err(
                format!("template in `{subject}` does not fill a whole token"),
                "nats-server before 2.11 only expands a template that is a whole token: write `a.{{name()}}.b`, not `a.x{{name()}}.b`",
            )
        })?;
    if inner.contains("{{") || inner.contains("}}") {
        return Err(err(
            format!("malformed template `{token}` in `{subject}`"),
            format!("use one of {FUNCTIONS}"),
        ));
    }
    let placeholder = match inner {
        "name()" => Placeholder::Name,
        "subject()" => Placeholder::Subject,
        "account-name()" => Placeholder::AccountName,
        "account-subject()" => Placeholder::AccountSubject,
        _ => {
            let tagged = |prefix: &str| {
                inner
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|k| {
                        !k.is_empty()
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    })
            };
            if let Some(key) = tagged("tag(") {
                Placeholder::Tag(key.to_ascii_lowercase())
            } else if let Some(key) = tagged("account-tag(") {
                Placeholder::AccountTag(key.to_ascii_lowercase())
            } else {
                let help = if inner.trim() != inner {
                    "remove the spaces inside {{ }}: nats-server before 2.11 does not trim them"
                        .to_string()
                } else if inner.to_ascii_lowercase() != inner {
                    "write template functions in lower case".to_string()
                } else {
                    format!("the template functions are {FUNCTIONS}")
                };
                return Err(err(
                    format!("unknown template function `{token}` in `{subject}`"),
                    help,
                ));
            }
        }
    };
    Ok(placeholder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_subjects_pass() {
        for s in [
            "a",
            "a.b",
            "a.*.c",
            "a.>",
            ">",
            "*",
            "$SYS.REQ.>",
            "_INBOX.>",
        ] {
            check_subject(s, true).unwrap();
        }
    }

    #[test]
    fn malformed_subjects_fail() {
        for s in [
            "", "a..b", ".a", "a.", "a b", "a.>.b", "a.b>", "a.*b", "a\tb",
        ] {
            assert!(check_subject(s, true).is_err(), "{s:?} should fail");
        }
        assert!(check_subject("a.*", false).is_err());
    }

    #[test]
    fn queue_groups_only_in_sub_lists() {
        check_permission_entry("q.> workers", true, false).unwrap();
        assert!(check_permission_entry("q.> workers", false, false).is_err());
        assert!(check_permission_entry("a b c", true, false).is_err());
    }

    #[test]
    fn templates_are_parsed_per_token() {
        let found =
            check_permission_entry("{{account-name()}}.{{tag(Team)}}.{{name()}}.>", false, true)
                .unwrap();
        assert_eq!(
            found,
            vec![
                Placeholder::AccountName,
                Placeholder::Tag("team".into()),
                Placeholder::Name
            ]
        );
        assert!(check_permission_entry("a.{{nme()}}", false, true)
            .unwrap_err()
            .message
            .contains("unknown template"));
        assert!(check_permission_entry("a.x{{name()}}", false, true).is_err());
        assert!(check_permission_entry("a.{{ name() }}", false, true).is_err());
        assert!(check_permission_entry("a.{{name()}}", false, false).is_err());
    }
}
