//! Where each key of a manifest sits in its source text, for errors that
//! point at a line.
//!
//! The serde model does not keep positions, so both formats are walked a
//! second time with a span-aware parser (`toml_edit` for TOML, `yaml-rust2`'s
//! event API for YAML) to map key paths to line numbers.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path (map keys and sequence indexes as text) → 1-based line.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    lines: HashMap<Vec<String>, usize>,
    /// Keys that appear twice in the same mapping (YAML only: the TOML
    /// parser already refuses them), with the line of the second one.
    pub duplicates: Vec<(Vec<String>, usize)>,
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

    fn record(&mut self, path: Vec<String>, line: usize) {
        match self.lines.entry(path) {
            std::collections::hash_map::Entry::Occupied(e) => {
                self.duplicates.push((e.key().clone(), line))
            }
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

    /// Keys that appear twice in one YAML mapping, with the line of the
    /// second; cheap enough to run on every load (serde_yaml keeps the last
    /// of two equal keys silently).
    pub fn yaml_duplicates(text: &str) -> Vec<(Vec<String>, usize)> {
        let mut walker = YamlWalker {
            duplicates_only: true,
            ..YamlWalker::default()
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut walker, false);
        walker.map.duplicates
    }
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
        /// Keys seen so far in this mapping, to find duplicates without
        /// remembering the whole document.
        seen: HashSet<String>,
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
                let duplicate = !seen.insert(k.clone());
                let mut p = self.path.clone();
                p.push(k);
                if duplicate {
                    self.map.duplicates.push((p, mark.line()));
                } else if !self.duplicates_only {
                    self.map.lines.insert(p, mark.line());
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
                    seen: HashSet::new(),
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
            vec![(vec!["a".to_string(), "x".to_string()], 3)]
        );
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
