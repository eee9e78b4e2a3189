//! Where each key of a manifest sits in its source text, for errors that
//! point at a line.
//!
//! The serde model does not keep positions, so both formats are walked a
//! second time with a span-aware parser (`toml_edit` for TOML, `yaml-rust2`'s
//! event API for YAML) to map key paths to line numbers.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path (map keys and sequence indexes as text) → 1-based line.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    lines: HashMap<Vec<String>, usize>,
    /// Keys that appear twice in the same mapping (YAML only: the TOML
    /// parser already refuses them).
    pub duplicates: Vec<Duplicate>,
}

/// A key that appears twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// Its key path.
    pub path: Vec<String>,
    /// The line of the second occurrence.
    pub line: usize,
    /// The line of the first.
    pub first_line: usize,
}

impl SourceMap {
    /// The line of the deepest prefix of `path` that has a known position.
    pub fn line_of<S: AsRef<str>>(&self, path: &[S]) -> Option<usize> {
        let mut key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        loop {
            if let Some(line) = self.lines.get(&key) {
                return Some(*line);
            }
            key.pop()?;
        }
    }

    /// The line of exactly `path`, if it is in the document.
    pub fn exact_line<S: AsRef<str>>(&self, path: &[S]) -> Option<usize> {
        let key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        self.lines.get(&key).copied()
    }

    /// Every key path that starts on `line`, shortest first (then by
    /// text). A linear scan: only errors ask.
    pub fn paths_at(&self, line: usize) -> Vec<Vec<String>> {
        let mut found: Vec<Vec<String>> = self
            .lines
            .iter()
            .filter(|(_, l)| **l == line)
            .map(|(p, _)| p.clone())
            .collect();
        found.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        found
    }

    /// The key written just before `path` in the same mapping (the sibling
    /// with the greatest line above it), if any. A linear scan: only
    /// errors ask.
    pub fn sibling_before<S: AsRef<str>>(&self, path: &[S]) -> Option<String> {
        let (_, parent) = path.split_last()?;
        let line = self.exact_line(path)?;
        self.lines
            .iter()
            .filter(|(p, l)| {
                **l < line
                    && p.len() == path.len()
                    && p.iter().zip(parent).all(|(a, b)| a == b.as_ref())
            })
            .max_by_key(|(p, l)| (**l, std::cmp::Reverse((*p).clone())))
            .and_then(|(p, _)| p.last().cloned())
    }

    fn record(&mut self, path: Vec<String>, line: usize) {
        match self.lines.entry(path) {
            std::collections::hash_map::Entry::Occupied(e) => self.duplicates.push(Duplicate {
                path: e.key().clone(),
                line,
                first_line: *e.get(),
            }),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(line);
            }
        }
    }

    /// Builds the map for a TOML document; an unparsable document gives an
    /// empty map (the serde parse reports the error itself).
    pub fn from_toml(text: &str) -> SourceMap {
        let mut map = SourceMap::default();
        if let Ok(doc) = text.parse::<toml_edit::Document<String>>() {
            let index = LineIndex::new(text);
            walk_toml_table(doc.as_table(), &mut Vec::new(), &index, &mut map);
        }
        map
    }

    /// Builds the map for a YAML document; an unparsable document gives a
    /// partial map.
    pub fn from_yaml(text: &str) -> SourceMap {
        let mut walker = YamlWalker::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut walker, false);
        walker.map
    }

    /// Checks a YAML document before serde reads it: keys that appear twice
    /// in one mapping, with the line of the second (serde_yaml keeps the
    /// last of two equal keys silently), and nesting deeper than
    /// [`MAX_DEPTH`] (stops there, so the cost is linear in the text).
    /// Cheap enough to run on every load; a syntax error ends the walk
    /// (serde reports it).
    pub fn yaml_check(text: &str) -> YamlCheck {
        let mut walker = YamlWalker {
            duplicates_only: true,
            ..YamlWalker::default()
        };
        let mut parser = Parser::new_from_str(text);
        let mut depth = 0usize;
        let mut too_deep = None;
        while let Ok((ev, mark)) = parser.next_token() {
            match ev {
                Event::StreamEnd => break,
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        too_deep = Some(mark.line());
                        break;
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
                _ => {}
            }
            walker.on_event(ev, mark);
        }
        YamlCheck {
            duplicates: walker.map.duplicates,
            too_deep,
        }
    }
}

/// How deeply maps and lists may nest in a manifest. The deepest real
/// manifest path (`operators.O.accounts.A.users.U.sub.allow.0`, or a
/// mapping's weighted destinations) is about 10 levels; the limit stops
/// hostile input (thousands of levels under an unknown field) before any
/// parser spends time on it.
pub const MAX_DEPTH: usize = 64;

/// The line where YAML flow collections (`[…]`, `{…}`) first nest deeper
/// than [`MAX_DEPTH`]. yaml-rust2's scanner is quadratic in the depth of
/// `[[[…` (each level stays a possible key), so this linear scan runs
/// first. A bracket counts only where a flow collection may start: at the
/// start of a line (after indentation), after `- `, `: `, `? `, or inside a
/// flow collection after `[`, `{` or `,`; quoted scalars and comments are
/// skipped. Closing brackets never take the depth below zero.
pub fn yaml_flow_too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    // Whether a flow collection may start here (only whitespace since a
    // value start).
    let mut value_start = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                value_start = true;
            }
            b' ' | b'\t' | b'\r' => {}
            b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if value_start => {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' if c == b'"' => i += 1,
                        b'\'' if c == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 1,
                        b'\n' => line += 1,
                        q if q == c => break,
                        _ => {}
                    }
                    i += 1;
                }
                value_start = false;
            }
            b'[' | b'{' if value_start => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                value_start = false;
            }
            b',' if depth > 0 => value_start = true,
            b'-' | b':' | b'?'
                if matches!(b.get(i + 1), None | Some(b' ' | b'\t' | b'\n' | b'\r')) =>
            {
                value_start = true
            }
            b':' if depth > 0 => value_start = true,
            _ => value_start = false,
        }
        i += 1;
    }
    None
}

/// What [`SourceMap::yaml_check`] found.
#[derive(Debug, Default)]
pub struct YamlCheck {
    /// Repeated keys, with the lines of both occurrences.
    pub duplicates: Vec<Duplicate>,
    /// The line where nesting first exceeds [`MAX_DEPTH`].
    pub too_deep: Option<usize>,
}

/// The line where maps and lists (`[…]`, `{…}`, and `[…]`/`{…}` values of
/// a TOML document) first nest deeper than [`MAX_DEPTH`], found by a linear
/// scan that skips strings and comments; table headers (`[a.b]`, `[[a]]`)
/// do not count as nesting.
pub fn toml_too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    // Whether only whitespace has been seen on this line at depth 0 (a `[`
    // there opens a table header).
    let mut line_start = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let triple = b[i..].starts_with(if c == b'"' { b"\"\"\"" } else { b"\'\'\'" });
                let (open, close): (usize, &[u8]) = if triple {
                    (3, if c == b'"' { b"\"\"\"" } else { b"\'\'\'" })
                } else {
                    (1, if c == b'"' { b"\"" } else { b"\'" })
                };
                i += open;
                while i < b.len() {
                    if b[i] == b'\\' && c == b'"' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\n' {
                        if !triple {
                            break;
                        }
                        line += 1;
                    }
                    if b[i..].starts_with(close) {
                        i += close.len();
                        break;
                    }
                    i += 1;
                }
                line_start = false;
                continue;
            }
            b'[' if depth == 0 && line_start => {
                // A table header: skip to the end of the line.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        line_start = false;
        i += 1;
    }
    None
}

/// Byte offset → line lookups.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

fn walk_toml_table(
    table: &toml_edit::Table,
    path: &mut Vec<String>,
    index: &LineIndex,
    map: &mut SourceMap,
) {
    for (name, item) in table.iter() {
        path.push(name.to_string());
        let span = table
            .key(name)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        if let Some(span) = span {
            map.record(path.clone(), index.line(span.start));
        }
        walk_toml_item(item, path, index, map);
        path.pop();
    }
}

fn walk_toml_item(
    item: &toml_edit::Item,
    path: &mut Vec<String>,
    index: &LineIndex,
    map: &mut SourceMap,
) {
    match item {
        toml_edit::Item::Table(t) => walk_toml_table(t, path, index, map),
        toml_edit::Item::ArrayOfTables(arr) => {
            for (i, t) in arr.iter().enumerate() {
                path.push(i.to_string());
                if let Some(span) = t.span() {
                    map.record(path.clone(), index.line(span.start));
                }
                walk_toml_table(t, path, index, map);
                path.pop();
            }
        }
        toml_edit::Item::Value(v) => walk_toml_value(v, path, index, map),
        toml_edit::Item::None => {}
    }
}

fn walk_toml_value(
    value: &toml_edit::Value,
    path: &mut Vec<String>,
    index: &LineIndex,
    map: &mut SourceMap,
) {
    match value {
        toml_edit::Value::InlineTable(t) => {
            for (name, v) in t.iter() {
                path.push(name.to_string());
                let span = t.key(name).and_then(|k| k.span()).or_else(|| v.span());
                if let Some(span) = span {
                    map.record(path.clone(), index.line(span.start));
                }
                walk_toml_value(v, path, index, map);
                path.pop();
            }
        }
        toml_edit::Value::Array(arr) => {
            for (i, v) in arr.iter().enumerate() {
                path.push(i.to_string());
                if let Some(span) = v.span() {
                    map.record(path.clone(), index.line(span.start));
                }
                walk_toml_value(v, path, index, map);
                path.pop();
            }
        }
        _ => {}
    }
}

enum Frame {
    Mapping {
        key: Option<String>,
        /// Keys seen so far in this mapping and their lines, to find
        /// duplicates without remembering the whole document.
        seen: HashMap<String, usize>,
    },
    Sequence {
        next: usize,
    },
}

#[derive(Default)]
struct YamlWalker {
    map: SourceMap,
    stack: Vec<Frame>,
    path: Vec<String>,
    /// Only find duplicates; record no positions.
    duplicates_only: bool,
}

impl YamlWalker {
    /// Called when a value (scalar or container) starts at `mark`; returns
    /// whether it was a mapping key.
    fn value_starts(&mut self, scalar: Option<&str>, mark: Marker) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key, seen }) if key.is_none() => {
                let k = scalar.unwrap_or("").to_string();
                *key = Some(k.clone());
                let first = match seen.entry(k.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(mark.line());
                        None
                    }
                };
                if first.is_some() || !self.duplicates_only {
                    let mut p = self.path.clone();
                    p.push(k);
                    if let Some(first_line) = first {
                        self.map.duplicates.push(Duplicate {
                            path: p,
                            line: mark.line(),
                            first_line,
                        });
                    } else {
                        self.map.lines.insert(p, mark.line());
                    }
                }
                true
            }
            Some(Frame::Mapping { key, .. }) => {
                self.path.push(key.clone().unwrap_or_default());
                false
            }
            Some(Frame::Sequence { next }) => {
                let i = *next;
                self.path.push(i.to_string());
                if !self.duplicates_only {
                    let p = self.path.clone();
                    self.map.record(p, mark.line());
                }
                false
            }
            None => false,
        }
    }

    /// Called when a value ends: pops its path element and advances the parent.
    fn value_ends(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key, .. }) => {
                *key = None;
                self.path.pop();
            }
            Some(Frame::Sequence { next }) => {
                *next += 1;
                self.path.pop();
            }
            None => {}
        }
    }
}

impl MarkedEventReceiver for YamlWalker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            // A scalar that is not a mapping key is a complete value.
            Event::Scalar(text, ..) if !self.value_starts(Some(&text), mark) => self.value_ends(),
            Event::Alias(_) if !self.value_starts(None, mark) => self.value_ends(),
            Event::MappingStart(..) => {
                self.value_starts(None, mark);
                self.stack.push(Frame::Mapping {
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(..) => {
                self.value_starts(None, mark);
                self.stack.push(Frame::Sequence { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_ends();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_map_to_their_lines() {
        let text = "operators:\n  O2:\n    accounts:\n      A:\n        users:\n          U: {signer: main}\n          V:\n            tags: [a, b]\n";
        let m = SourceMap::from_yaml(text);
        assert_eq!(m.line_of(&["operators", "O2"]), Some(2));
        assert_eq!(
            m.line_of(&["operators", "O2", "accounts", "A", "users", "U", "signer"]),
            Some(6)
        );
        assert_eq!(
            m.line_of(&[
                "operators",
                "O2",
                "accounts",
                "A",
                "users",
                "V",
                "tags",
                "1"
            ]),
            Some(8)
        );
        assert_eq!(
            m.line_of(&["operators", "O2", "accounts", "A", "users", "V", "missing"]),
            Some(7)
        );
    }

    #[test]
    fn yaml_duplicate_keys_are_reported() {
        let m = SourceMap::from_yaml("a:\n  x: 1\n  x: 2\n");
        assert_eq!(
            m.duplicates,
            vec![Duplicate {
                path: vec!["a".to_string(), "x".to_string()],
                line: 3,
                first_line: 2
            }]
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_found_on_its_line() {
        let deep =
            |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
        // At the limit: accepted; one more: refused, on the line it happens.
        let ok = format!("a:\n  x: {}\n", deep("[", "]", MAX_DEPTH));
        assert_eq!(yaml_flow_too_deep(&ok), None);
        let bad = format!("a:\n  x: {}\n", deep("[", "]", MAX_DEPTH + 1));
        assert_eq!(yaml_flow_too_deep(&bad), Some(2));
        let bad = format!("a:\n  x: {}\n", deep("{b: ", "}", MAX_DEPTH + 1));
        assert_eq!(yaml_flow_too_deep(&bad), Some(2));
        // Brackets inside quotes, comments and plain scalars do not count.
        let text = format!("a: '{0}'\nb: \"{0}\"\nc: x{0}\n# {0}\n", "[".repeat(100));
        assert_eq!(yaml_flow_too_deep(&text), None);
        // Block nesting is counted by the event walk.
        let mut block = String::new();
        for i in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k:\n", " ".repeat(i)));
        }
        block.push_str(&format!("{}v: 1\n", " ".repeat(MAX_DEPTH + 1)));
        assert_eq!(SourceMap::yaml_check(&block).too_deep, Some(MAX_DEPTH + 1));

        let ok = format!("[t]\nx = {}\n", deep("[", "]", MAX_DEPTH));
        assert_eq!(toml_too_deep(&ok), None);
        let bad = format!("[t]\n[[u]]\nx = {}\n", deep("{a = ", "}", MAX_DEPTH + 1));
        assert_eq!(toml_too_deep(&bad), Some(3));
        let text = format!(
            "[t]\na = '{0}'\nb = \"{0}\"\nc = \"\"\"\n{0}\"\"\"\n# {0}\n",
            "[".repeat(100)
        );
        assert_eq!(toml_too_deep(&text), None);
    }

    #[test]
    fn toml_keys_map_to_their_lines() {
        let text = "[operators.O2]\nsigning_keys = [\"ops\"]\n\n[operators.O2.accounts.A.users.U]\nsigner = \"main\"\ntags = [\"a\"]\n";
        let m = SourceMap::from_toml(text);
        assert_eq!(m.line_of(&["operators", "O2", "signing_keys"]), Some(2));
        assert_eq!(
            m.line_of(&["operators", "O2", "accounts", "A", "users", "U", "signer"]),
            Some(5)
        );
        assert_eq!(
            m.line_of(&[
                "operators",
                "O2",
                "accounts",
                "A",
                "users",
                "U",
                "tags",
                "0"
            ]),
            Some(6)
        );
    }
}
