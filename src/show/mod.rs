//! The trust tree as a picture: `natsform show --format dot|mermaid`.
//!
//! Pure: [`build`] turns the store's decoded JWTs (what is deployed) and the
//! lock's key addresses into a [`Graph`] (data only); [`dot::render`] and
//! [`mermaid::render`] write it as text. Node ids are generated (`n0`,
//! `n1`, …, in `ObjectId` order), never taken from the store, and every
//! label is escaped for the format it lands in: names in the store may be
//! hostile.
//!
//! The graph: operator → its signing keys → accounts (each signed by the key
//! that signed its JWT) → the account's signing keys and scoped roles (with
//! their permission template summarised) → users (each signed by its
//! signer); an import is an edge from the importing account to the
//! exporting one, labelled with its type and subject.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::plan::existing::Existing;
use crate::plan::render_claims::Names;
use crate::safepath::escape_line;
use crate::tree::{ObjectId, ObjectKind};

pub mod dot;
pub mod mermaid;

/// Longest label line shown, in characters; longer lines end in `…`.
const MAX_LINE: usize = 100;
/// Subjects shown per permission list of a role; the rest are counted.
const MAX_SUBJECTS: usize = 4;

/// What a node stands for (its shape in the picture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Operator,
    /// An operator's signing key.
    OperatorKey,
    Account,
    /// A plain account signing key.
    AccountKey,
    /// A scoped account signing key (a role with a permission template).
    Role,
    User,
    /// A key or account the store does not hold (an unknown signer, an
    /// exporter outside the store).
    Outside,
    /// A JWT that does not verify: shown, with no edges but ownership.
    Invalid,
}

/// How one node relates to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// The owner holds this signing key (no arrow).
    Owns,
    /// The key signed the target's JWT.
    Signs,
    /// The source account imports from the target account.
    Imports,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `n0`, `n1`, …: safe in every format.
    pub id: String,
    pub kind: NodeKind,
    /// Label lines, escaped for a terminal (no control character) and
    /// bounded in length; each format escapes them again.
    pub lines: Vec<String>,
    /// The group (index into [`Graph::groups`]) that holds this node.
    pub group: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    pub label: Option<String>,
}

/// A box around an operator or an account and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `g0`, `g1`, …
    pub id: String,
    pub title: String,
    pub parent: Option<usize>,
}

/// The trust tree as nodes, edges and nested groups, in a deterministic
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub groups: Vec<Group>,
}

/// One label line: controls escaped (`\u{1b}`), at most [`MAX_LINE`]
/// characters.
fn line(text: &str) -> String {
    let escaped = escape_line(text);
    if escaped.chars().count() <= MAX_LINE {
        return escaped.into_owned();
    }
    let mut out: String = escaped.chars().take(MAX_LINE - 1).collect();
    out.push('…');
    out
}

/// A public key as its lock address, or the key itself when the lock does
/// not name it.
fn key_label(public: &str, names: &(impl Names + ?Sized)) -> String {
    line(names.name_of(public).unwrap_or(public))
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A role's permission template in a few lines: `pub allow: a, b`,
/// `sub deny: >`, `resp: max 1`.
fn permission_summary(template: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(t) = template else {
        return out;
    };
    for dir in ["pub", "sub"] {
        for list in ["allow", "deny"] {
            let subjects = strings(t.get(dir).and_then(|d| d.get(list)));
            if subjects.is_empty() {
                continue;
            }
            let mut text = format!("{dir} {list}: ");
            text.push_str(
                &subjects
                    .iter()
                    .take(MAX_SUBJECTS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            if subjects.len() > MAX_SUBJECTS {
                text.push_str(&format!(" (+{} more)", subjects.len() - MAX_SUBJECTS));
            }
            out.push(line(&text));
        }
    }
    if let Some(max) = t
        .get("resp")
        .and_then(|r| r.get("max"))
        .and_then(Value::as_i64)
    {
        out.push(format!("resp: max {max}"));
    }
    if t.get("bearer_token").and_then(Value::as_bool) == Some(true) {
        out.push("bearer token".to_string());
    }
    if out.is_empty() {
        out.push("no permissions set".to_string());
    }
    out
}

/// The public key of an account's signing key entry (plain or scoped).
fn signing_key_public(entry: &Value) -> String {
    match entry {
        Value::String(k) => k.clone(),
        other => other
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

struct Builder<'n, N: Names + ?Sized> {
    graph: Graph,
    names: &'n N,
    /// Public key → the node that stands for it (identity or signing key).
    keys: BTreeMap<String, String>,
    /// Account public key → account node, for imports.
    accounts: BTreeMap<String, String>,
    /// Keys shown as [`NodeKind::Outside`] nodes, by public key.
    outside: BTreeMap<String, String>,
    /// Imports to draw once every account has its node.
    imports: Vec<(String, Value)>,
}

impl<N: Names + ?Sized> Builder<'_, N> {
    fn node(&mut self, kind: NodeKind, lines: Vec<String>, group: Option<usize>) -> String {
        let id = format!("n{}", self.graph.nodes.len());
        self.graph.nodes.push(Node {
            id: id.clone(),
            kind,
            lines,
            group,
        });
        id
    }

    fn group(&mut self, title: String, parent: Option<usize>) -> usize {
        let index = self.graph.groups.len();
        self.graph.groups.push(Group {
            id: format!("g{index}"),
            title,
            parent,
        });
        index
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind, label: Option<String>) {
        self.graph.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            kind,
            label,
        });
    }

    /// The node of `public`, or a node for a key the store does not hold.
    fn key_node(&mut self, public: &str, what: &str) -> String {
        if let Some(id) = self.keys.get(public) {
            return id.clone();
        }
        if let Some(id) = self.outside.get(public) {
            return id.clone();
        }
        let label = key_label(public, self.names);
        let id = self.node(NodeKind::Outside, vec![what.to_string(), label], None);
        self.outside.insert(public.to_string(), id.clone());
        id
    }

    fn signed_by(&mut self, issuer: &str, target: &str) {
        let from = self.key_node(issuer, "signer not in the store");
        self.edge(&from, target, EdgeKind::Signs, None);
    }
}

/// The objects shown for `filter`: those whose address contains it, with
/// their operator and account so that the tree stays connected.
fn selected(existing: &BTreeMap<ObjectId, Existing>, filter: Option<&str>) -> BTreeSet<ObjectId> {
    let mut out = BTreeSet::new();
    for id in existing.keys() {
        if filter.is_some_and(|f| !id.address().contains(f)) {
            continue;
        }
        out.insert(ObjectId::operator(&id.operator));
        if let Some(account) = id.account_id() {
            out.insert(account);
        }
        out.insert(id.clone());
    }
    out.retain(|id| existing.contains_key(id));
    out
}

/// Builds the trust tree from the store's JWTs (`existing`, in `ObjectId`
/// order) and the lock's key addresses (`names`). With `filter`, only
/// objects whose address contains it (and their operator and account).
pub fn build(
    existing: &BTreeMap<ObjectId, Existing>,
    names: &(impl Names + ?Sized),
    filter: Option<&str>,
) -> Graph {
    let mut b = Builder {
        graph: Graph::default(),
        names,
        keys: BTreeMap::new(),
        accounts: BTreeMap::new(),
        outside: BTreeMap::new(),
        imports: Vec::new(),
    };
    let mut operator_groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut account_groups: BTreeMap<ObjectId, usize> = BTreeMap::new();
    for id in selected(existing, filter) {
        let kind = id.kind();
        let title = match kind {
            ObjectKind::Operator => "operator",
            ObjectKind::Account => "account",
            ObjectKind::User => "user",
        };
        let heading = line(&format!("{title} {}", id.name()));
        let group = match kind {
            ObjectKind::Operator => {
                let g = b.group(heading.clone(), None);
                operator_groups.insert(id.operator.clone(), g);
                Some(g)
            }
            ObjectKind::Account => {
                let parent = operator_groups.get(&id.operator).copied();
                let g = b.group(heading.clone(), parent);
                account_groups.insert(id.clone(), g);
                Some(g)
            }
            ObjectKind::User => id
                .account_id()
                .and_then(|a| account_groups.get(&a).copied()),
        };
        let decoded = match &existing[&id].decoded {
            Ok(d) => d,
            Err(e) => {
                let lines = vec![heading, line(&format!("invalid: {e}"))];
                b.node(NodeKind::Invalid, lines, group);
                continue;
            }
        };
        let claims = decoded.value();
        let nats = claims.get("nats");
        match kind {
            ObjectKind::Operator => {
                let lines = vec![heading, key_label(&decoded.subject, names)];
                let node = b.node(NodeKind::Operator, lines, group);
                b.keys.insert(decoded.subject.clone(), node.clone());
                if decoded.issuer != decoded.subject {
                    b.signed_by(&decoded.issuer, &node);
                }
                // By address, not by public key: the picture does not
                // reorder when keys are generated anew.
                let mut keys = strings(nats.and_then(|n| n.get("signing_keys")));
                keys.sort_by_key(|k| (key_label(k, names), k.to_string()));
                keys.dedup();
                for key in keys {
                    let lines = vec!["signing key".to_string(), key_label(key, names)];
                    let k = b.node(NodeKind::OperatorKey, lines, group);
                    b.keys.insert(key.to_string(), k.clone());
                    b.edge(&node, &k, EdgeKind::Owns, None);
                }
            }
            ObjectKind::Account => {
                let lines = vec![heading, key_label(&decoded.subject, names)];
                let node = b.node(NodeKind::Account, lines, group);
                b.keys.insert(decoded.subject.clone(), node.clone());
                b.accounts.insert(decoded.subject.clone(), node.clone());
                b.signed_by(&decoded.issuer, &node);
                let mut keys: Vec<(String, &Value)> = nats
                    .and_then(|n| n.get("signing_keys"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|k| (signing_key_public(k), k)).collect())
                    .unwrap_or_default();
                keys.sort_by_key(|(k, _)| (key_label(k, names), k.clone()));
                for (_, key) in keys {
                    let (public, lines, kind) = match key {
                        Value::String(k) => (
                            k.as_str(),
                            vec!["signing key".to_string(), key_label(k, names)],
                            NodeKind::AccountKey,
                        ),
                        Value::Object(scope) => {
                            let Some(k) = scope.get("key").and_then(Value::as_str) else {
                                continue;
                            };
                            let role = scope.get("role").and_then(Value::as_str).unwrap_or("");
                            let mut lines =
                                vec![line(&format!("role {role}")), key_label(k, names)];
                            lines.extend(permission_summary(scope.get("template")));
                            (k, lines, NodeKind::Role)
                        }
                        _ => continue,
                    };
                    let k = b.node(kind, lines, group);
                    b.keys.insert(public.to_string(), k.clone());
                    b.edge(&node, &k, EdgeKind::Owns, None);
                }
                if let Some(Value::Array(imports)) = nats.and_then(|n| n.get("imports")) {
                    for import in imports {
                        b.imports.push((node.clone(), import.clone()));
                    }
                }
            }
            ObjectKind::User => {
                let node = b.node(NodeKind::User, vec![heading], group);
                b.signed_by(&decoded.issuer, &node);
            }
        }
    }
    for (importer, import) in std::mem::take(&mut b.imports) {
        let field = |name: &str| import.get(name).and_then(Value::as_str).unwrap_or("");
        let exporter = field("account");
        let to = match b.accounts.get(exporter) {
            Some(node) => node.clone(),
            None => {
                let id = match b.outside.get(exporter) {
                    Some(id) => id.clone(),
                    None => {
                        let lines =
                            vec!["account not shown".to_string(), key_label(exporter, names)];
                        let id = b.node(NodeKind::Outside, lines, None);
                        b.outside.insert(exporter.to_string(), id.clone());
                        id
                    }
                };
                id
            }
        };
        let kind = match field("type") {
            "service" => "service",
            _ => "stream",
        };
        let subject = field("subject");
        let local = [field("local_subject"), field("to")]
            .into_iter()
            .find(|s| !s.is_empty() && *s != subject);
        let mut label = format!("imports {kind} {subject}");
        if let Some(local) = local {
            label.push_str(&format!(" as {local}"));
        }
        b.edge(&importer, &to, EdgeKind::Imports, Some(line(&label)));
    }
    b.graph
}

/// What a picture format writes for each part of the graph; [`write_body`]
/// walks the graph in the same order for every format.
pub(crate) trait Format {
    /// One node, indented by `pad`.
    fn node(out: &mut String, node: &Node, pad: &str);
    /// The line that opens a group, indented by `pad`.
    fn group_start(out: &mut String, group: &Group, pad: &str);
    /// The line that closes a group, indented by `pad`.
    fn group_end(out: &mut String, pad: &str);
    /// One edge.
    fn edge(out: &mut String, edge: &Edge);
}

/// The groups (nested, two spaces a level), the nodes in no group, then the
/// edges, as format `F` writes them.
pub(crate) fn write_body<F: Format>(out: &mut String, graph: &Graph) {
    let nesting = graph.nesting();
    for &g in &nesting.top_groups {
        write_group::<F>(out, graph, &nesting, g, 1);
    }
    for node in &nesting.top_nodes {
        F::node(out, node, "  ");
    }
    for edge in &graph.edges {
        F::edge(out, edge);
    }
}

fn write_group<F: Format>(
    out: &mut String,
    graph: &Graph,
    nesting: &Nesting,
    g: usize,
    depth: usize,
) {
    let pad = "  ".repeat(depth);
    F::group_start(out, &graph.groups[g], &pad);
    for node in &nesting.nodes[g] {
        F::node(out, node, &format!("{pad}  "));
    }
    for &child in &nesting.children[g] {
        write_group::<F>(out, graph, nesting, child, depth + 1);
    }
    F::group_end(out, &pad);
}

/// The nodes of each group and the groups inside it, for nested rendering.
pub(crate) struct Nesting<'g> {
    pub top_nodes: Vec<&'g Node>,
    pub top_groups: Vec<usize>,
    pub nodes: Vec<Vec<&'g Node>>,
    pub children: Vec<Vec<usize>>,
}

impl Graph {
    pub(crate) fn nesting(&self) -> Nesting<'_> {
        let mut n = Nesting {
            top_nodes: Vec::new(),
            top_groups: Vec::new(),
            nodes: vec![Vec::new(); self.groups.len()],
            children: vec![Vec::new(); self.groups.len()],
        };
        for node in &self.nodes {
            match node.group {
                Some(g) => n.nodes[g].push(node),
                None => n.top_nodes.push(node),
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            match g.parent {
                Some(p) => n.children[p].push(i),
                None => n.top_groups.push(i),
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_controls_escaped() {
        let long = "x".repeat(500);
        let cut = line(&long);
        assert_eq!(cut.chars().count(), MAX_LINE);
        assert!(cut.ends_with('…'));
        assert_eq!(line("a\u{1b}b\nc"), "a\\u{1b}b\\u{a}c");
    }

    #[test]
    fn a_template_is_summarised_and_bounded() {
        let t: Value = serde_json::json!({
            "pub": {"deny": [">"]},
            "sub": {"allow": ["a", "b", "c", "d", "e", "f"]},
            "resp": {"max": 1, "ttl": 0}
        });
        assert_eq!(
            permission_summary(Some(&t)),
            vec![
                "pub deny: >".to_string(),
                "sub allow: a, b, c, d (+2 more)".to_string(),
                "resp: max 1".to_string()
            ]
        );
        assert_eq!(
            permission_summary(Some(&serde_json::json!({}))),
            vec!["no permissions set".to_string()]
        );
    }
}
