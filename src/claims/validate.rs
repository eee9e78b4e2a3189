//! Blocking validation rules of the Go jwt library (HEAD, so including the
//! stricter subject dot rules of jwt >= 2.5.4), reported as
//! `(field path, message)` pairs.
//!
//! Only what Go's `Validate` treats as a *blocking* error is reported here;
//! warnings and time checks are not, except through
//! [`time_issues`](super::jwt::ClaimsData::time_issues).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One blocking validation problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Issue {
    /// JSON path of the offending field, e.g. `nats.exports[1].subject`.
    pub path: String,
    /// What is wrong, in Go's words where practical.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validation of a whole claim set, mirroring the Go library's blocking checks.
pub trait Validate {
    /// Every blocking problem; empty means Go's `Validate` would not block
    /// (time checks excluded).
    fn validate(&self) -> Vec<Issue>;
}

/// Collector used by the per-type validators.
#[derive(Debug, Default)]
pub(crate) struct Issues(pub(crate) Vec<Issue>);

impl Issues {
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// Go `Subject.Validate` (HEAD): non-empty, no spaces, no leading or
/// trailing `.`, no `..`. Wildcard placement is not checked, as in Go.
pub(crate) fn check_subject(issues: &mut Issues, path: &str, s: &str) {
    if s.is_empty() {
        issues.add(path, "subject cannot be empty");
        return;
    }
    if s.contains(' ') {
        issues.add(path, format!("subject {s:?} cannot have spaces"));
    }
    if s.starts_with('.') || s.ends_with('.') {
        issues.add(
            path,
            format!("subject {s:?} cannot start or end with a `.`"),
        );
    }
    if s.contains("..") {
        issues.add(
            path,
            format!("subject {s:?} cannot contain consecutive `.`"),
        );
    }
}

/// Go `checkPermission`: `subject` or, where permitted, `subject queue`.
pub(crate) fn check_permission(issues: &mut Issues, path: &str, entry: &str, permit_queue: bool) {
    let tokens: Vec<&str> = entry.split(' ').collect();
    match tokens.as_slice() {
        [subject] => check_subject(issues, path, subject),
        [subject, queue] => {
            check_subject(issues, path, subject);
            check_subject(issues, path, queue);
            if !permit_queue {
                issues.add(
                    path,
                    format!("Permission Subject {entry:?} is not allowed to contain queue"),
                );
            }
        }
        _ => issues.add(
            path,
            format!("Permission Subject {entry:?} contains too many spaces"),
        ),
    }
}

/// Go `Subject.HasWildCards`.
pub(crate) fn has_wildcards(s: &str) -> bool {
    s.ends_with(".>")
        || s.contains(".*.")
        || s.ends_with(".*")
        || s.starts_with("*.")
        || s == "*"
        || s == ">"
}

/// Go `Subject.IsContainedIn`: is every subject matched by `s` also matched by `other`?
pub(crate) fn is_contained_in(s: &str, other: &str) -> bool {
    let other_t: Vec<&str> = other.split('.').collect();
    let mine: Vec<&str> = s.split('.').collect();
    let last_is_gt = other_t.last() == Some(&">");
    if mine.len() > other_t.len() && !last_is_gt {
        return false;
    }
    if mine.len() < other_t.len() {
        return false;
    }
    for (i, tok) in other_t.iter().enumerate() {
        if i == other_t.len() - 1 && *tok == ">" {
            return true;
        }
        if *tok != mine[i] && *tok != "*" {
            return false;
        }
    }
    true
}

/// Go `Subject.countTokenWildcards`.
pub(crate) fn count_token_wildcards(s: &str) -> usize {
    s.split('.').filter(|t| *t == "*").count()
}

/// Go `RenamingSubject.Validate(from)`: a local subject may reference the
/// `*` tokens of `from` as `$1`, `$2`, … and must end in `>` iff `from` does.
pub(crate) fn check_renaming_subject(issues: &mut Issues, path: &str, local: &str, from: &str) {
    check_subject(issues, path, local);
    if from.is_empty() {
        issues.add(path, "subject cannot be empty");
    }
    let ends_gt = |s: &str| s == ">" || s.ends_with(".>");
    if ends_gt(local) != ends_gt(from) {
        issues.add(
            path,
            "both, renaming subject and subject, need to end or not end in >",
        );
    }
    let from_cnt = count_token_wildcards(from);
    let mut ref_cnt = 0;
    for tk in local.split('.') {
        if tk == "*" {
            ref_cnt += 1;
        }
        if tk.len() < 2 || !tk.starts_with('$') {
            continue;
        }
        // Go's strconv.Atoi also accepts a sign, so `$+1` counts as a reference.
        if let Ok(idx) = tk[1..].parse::<i64>() {
            if idx > from_cnt as i64 {
                issues.add(
                    path,
                    format!(
                        "Reference ${idx} in {local:?} reference * in {from:?} that do not exist"
                    ),
                );
            } else {
                ref_cnt += 1;
            }
        }
    }
    if ref_cnt != from_cnt {
        issues.add(
            path,
            "subject does not contain enough * or reference wildcards $[0-9]",
        );
    }
}

/// Go `net.ParseCIDR` (Go 1.19): `ip/bits`, where a bare IP is invalid.
pub(crate) fn check_cidr(issues: &mut Issues, path: &str, cidr: &str) {
    if !is_cidr(cidr) {
        issues.add(path, format!("invalid cidr {cidr:?} in user src limits"));
    }
}

pub(crate) fn is_cidr(cidr: &str) -> bool {
    let Some((addr, bits)) = cidr.split_once('/') else {
        return false;
    };
    let max = if addr.parse::<Ipv4Addr>().is_ok() {
        32
    } else if addr.parse::<Ipv6Addr>().is_ok() {
        128
    } else {
        return false;
    };
    // Go's dtoi: one or more ASCII digits, leading zeros allowed.
    !bits.is_empty()
        && bits.len() <= 7
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|n| n <= max)
}

/// Go `TimeRange.Validate` with `time.Parse("15:04:05", …)`: hour of one or
/// two digits below 24, two-digit minute and second below 60, and an
/// optional fractional second, which Go tolerates after the seconds field.
pub(crate) fn check_time(issues: &mut Issues, path: &str, which: &str, value: &str) {
    if value.is_empty() {
        let noun = if which == "start" {
            "a start"
        } else {
            "an end"
        };
        issues.add(path, format!("time ranges {which} must contain {noun}"));
    } else if !is_go_clock(value) {
        issues.add(path, format!("{which} in time range is invalid {value:?}"));
    }
}

pub(crate) fn is_go_clock(v: &str) -> bool {
    let b = v.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let num2 = |i: usize| (b[i] - b'0') as u32 * 10 + (b[i + 1] - b'0') as u32;
    if !digit(0) {
        return false;
    }
    let (hour, mut i) = if digit(1) {
        (num2(0), 2)
    } else {
        ((b[0] - b'0') as u32, 1)
    };
    if hour >= 24 || b.get(i) != Some(&b':') || !digit(i + 1) || !digit(i + 2) {
        return false;
    }
    if num2(i + 1) >= 60 {
        return false;
    }
    i += 3;
    if b.get(i) != Some(&b':') || !digit(i + 1) || !digit(i + 2) || num2(i + 1) >= 60 {
        return false;
    }
    i += 3;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') && digit(i + 1) {
        i += 1;
        while digit(i) {
            i += 1;
        }
    }
    i == b.len()
}

/// Go `time.LoadLocation`, checked against the host's zoneinfo.
///
/// If the host has no zoneinfo directory at all the name is accepted when
/// it is well formed, because the check cannot be made here (Go without
/// embedded tzdata would reject it; nats-server may embed tzdata).
pub(crate) fn check_location(issues: &mut Issues, path: &str, name: &str) {
    if !is_location(name) {
        issues.add(
            path,
            format!("could not parse iana time zone by name: unknown time zone {name}"),
        );
    }
}

pub(crate) fn is_location(name: &str) -> bool {
    if name == "UTC" || name == "Local" {
        return true;
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return false;
    }
    const DIRS: [&str; 4] = [
        "/usr/share/zoneinfo",
        "/usr/share/lib/zoneinfo",
        "/usr/lib/locale/TZ",
        "/etc/zoneinfo",
    ];
    let present: Vec<&Path> = DIRS.iter().map(Path::new).filter(|d| d.is_dir()).collect();
    if present.is_empty() {
        return true;
    }
    present
        .iter()
        .any(|d| std::fs::read(d.join(name)).is_ok_and(|bytes| bytes.starts_with(b"TZif")))
}

/// Go `Info.Validate`: description and info URL at most 8 KiB; the URL
/// needs a scheme and a host.
pub(crate) fn check_info(issues: &mut Issues, prefix: &str, description: &str, info_url: &str) {
    const MAX: usize = 8 * 1024;
    let path = |f: &str| super::permissions::join(prefix, f);
    if description.len() > MAX {
        issues.add(&path("description"), "Description is too long");
    }
    if !info_url.is_empty() {
        if info_url.len() > MAX {
            issues.add(&path("info_url"), "Info URL is too long");
        }
        match GoUrl::parse(info_url) {
            Ok(u) if !u.scheme.is_empty() && !u.hostname().is_empty() => {}
            Ok(_) => issues.add(
                &path("info_url"),
                "error parsing info url: no hostname or scheme",
            ),
            Err(e) => issues.add(&path("info_url"), format!("error parsing info url: {e}")),
        }
    }
}

/// The parts of Go's `url.Parse` result that the jwt library inspects.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GoUrl {
    pub(crate) scheme: String,
    pub(crate) has_user: bool,
    pub(crate) host: String,
    pub(crate) path: String,
}

impl GoUrl {
    /// An approximation of Go's `net/url.Parse` that agrees with it on the
    /// questions the jwt library asks: scheme, userinfo, host and path.
    pub(crate) fn parse(raw: &str) -> Result<GoUrl, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("invalid control character in URL".into());
        }
        let no_frag = raw.split_once('#').map_or(raw, |(a, _)| a);
        let mut url = GoUrl::default();
        let mut rest = no_frag;
        if let Some((scheme, after)) = split_scheme(no_frag)? {
            url.scheme = scheme.to_ascii_lowercase();
            rest = after;
        }
        rest = rest.split_once('?').map_or(rest, |(a, _)| a);
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                // Opaque URL such as `nats:host`: no host, no path.
                return Ok(url);
            }
            let first = rest.split_once('/').map_or(rest, |(a, _)| a);
            if first.contains(':') {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            let host = match authority.rfind('@') {
                Some(i) => {
                    url.has_user = true;
                    &authority[i + 1..]
                }
                None => authority,
            };
            check_host(host)?;
            url.host = host.to_string();
            rest = path;
        }
        url.path = rest.to_string();
        Ok(url)
    }

    /// Go `URL.Hostname()`: the host without port and IPv6 brackets.
    pub(crate) fn hostname(&self) -> &str {
        let h = self.host.as_str();
        if let Some(stripped) = h.strip_prefix('[') {
            return stripped.split(']').next().unwrap_or("");
        }
        h.rsplit_once(':').map_or(h, |(a, _)| a)
    }
}

fn split_scheme(raw: &str) -> Result<Option<(&str, &str)>, String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok(Some((&raw[..i], &raw[i + 1..]))),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

fn check_host(host: &str) -> Result<(), String> {
    let port = if host.starts_with('[') {
        let end = host
            .find(']')
            .ok_or_else(|| "missing ']' in host".to_string())?;
        &host[end + 1..]
    } else {
        let bad = host.bytes().any(|b| {
            !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%<>\"".contains(&b) || b >= 0x80)
        });
        if bad {
            return Err(format!("invalid character in host name {host:?}"));
        }
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let port_ok = port
        .strip_prefix(':')
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if !port.is_empty() && !port_ok {
        return Err(format!("invalid port {port:?} after host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(f: impl FnOnce(&mut Issues)) -> usize {
        let mut i = Issues::default();
        f(&mut i);
        i.0.len()
    }

    #[test]
    fn subjects_follow_head_dot_rules() {
        assert_eq!(errors(|i| check_subject(i, "s", "a.b.>")), 0);
        assert_eq!(errors(|i| check_subject(i, "s", "")), 1);
        assert_eq!(errors(|i| check_subject(i, "s", "a b")), 1);
        assert_eq!(errors(|i| check_subject(i, "s", ".a")), 1);
        assert_eq!(errors(|i| check_subject(i, "s", "a..b")), 1);
    }

    #[test]
    fn queues_are_only_allowed_where_permitted() {
        assert_eq!(errors(|i| check_permission(i, "p", "a.b q", true)), 0);
        assert_eq!(errors(|i| check_permission(i, "p", "a.b q", false)), 1);
        assert_eq!(errors(|i| check_permission(i, "p", "a b c", true)), 1);
    }

    #[test]
    fn cidrs_need_a_prefix_length() {
        assert!(is_cidr("1.2.3.4/32"));
        assert!(is_cidr("10.0.0.0/8"));
        assert!(is_cidr("::1/128"));
        assert!(!is_cidr("1.2.3.4"));
        assert!(!is_cidr("1.2.3.4/33"));
        assert!(!is_cidr("1.2.3.4/"));
        assert!(!is_cidr("01.2.3.4/8"));
    }

    #[test]
    fn clock_times_follow_go_layout_15_04_05() {
        for ok in ["00:00:00", "23:59:59", "9:00:00", "10:00:00.5"] {
            assert!(is_go_clock(ok), "{ok}");
        }
        for bad in [
            "17:00",
            "24:00:00",
            "10:60:00",
            "10:00:60",
            "10:0:00",
            "10:00:00x",
            "",
        ] {
            assert!(!is_go_clock(bad), "{bad}");
        }
    }

    #[test]
    fn containment_matches_go() {
        assert!(is_contained_in("a.b", "a.>"));
        assert!(is_contained_in("a.b", "a.*"));
        assert!(!is_contained_in("a", "a.>"));
        assert!(!is_contained_in("a.b.c", "a.*"));
        assert!(is_contained_in("help.>", "help.>"));
    }

    #[test]
    fn urls_are_split_like_go() {
        let u = GoUrl::parse("nats://user@host:4222/x").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.has_user, u.hostname(), u.path.as_str()),
            ("nats", true, "host", "/x")
        );
        let u = GoUrl::parse("https://[::1]:80").unwrap();
        assert_eq!(u.hostname(), "::1");
        assert!(GoUrl::parse("nats://host:abc").is_err());
        assert!(GoUrl::parse(":nope").is_err());
        assert_eq!(GoUrl::parse("localhost").unwrap().scheme, "");
    }

    #[test]
    fn renaming_subjects_must_reference_every_wildcard() {
        assert_eq!(errors(|i| check_renaming_subject(i, "l", "x.$1", "a.*")), 0);
        assert_eq!(errors(|i| check_renaming_subject(i, "l", "x.>", "a.>")), 0);
        assert_eq!(errors(|i| check_renaming_subject(i, "l", "x", "a.*")), 1);
        assert_eq!(errors(|i| check_renaming_subject(i, "l", "x.$2", "a.*")), 2);
    }
}
