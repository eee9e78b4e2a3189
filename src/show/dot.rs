//! The trust tree in Graphviz's DOT language (`dot -Tsvg tree.dot`).
//!
//! Every label is a quoted DOT string: `\` and `"` are backslash-escaped,
//! and `&` is written `&amp;` because Graphviz turns entities (`&lt;`,
//! `&#60;`) in labels into characters. Lines are joined with `\n`. Node and
//! group ids are generated, never taken from the store.

use std::fmt::Write;

use super::{write_body, Edge, EdgeKind, Format, Graph, Group, Node, NodeKind};

/// A label line as the inside of a quoted DOT string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '&' => out.push_str("&amp;"),
            // Lines are escaped for a terminal before they get here; a
            // control character left would still not break the string.
            c if c.is_control() => {
                let _ = write!(out, "\\\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("\\n")
}

fn attributes(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Operator => "shape=box, style=\"bold,filled\", fillcolor=\"#dde8f5\"",
        NodeKind::Account => "shape=box, style=\"bold,filled\", fillcolor=\"#e3f2e1\"",
        NodeKind::OperatorKey | NodeKind::AccountKey => "shape=ellipse",
        NodeKind::Role => "shape=box, style=rounded",
        NodeKind::User => "shape=box",
        NodeKind::Outside => "shape=box, style=dashed",
        NodeKind::Invalid => "shape=box, style=dashed, color=red, fontcolor=red",
    }
}

/// DOT: a group is a `cluster_` subgraph.
struct Dot;

impl Format for Dot {
    fn node(out: &mut String, node: &Node, pad: &str) {
        let _ = writeln!(
            out,
            "{pad}{} [label=\"{}\", {}];",
            node.id,
            label(&node.lines),
            attributes(node.kind)
        );
    }

    fn group_start(out: &mut String, group: &Group, pad: &str) {
        let _ = writeln!(out, "{pad}subgraph cluster_{} {{", group.id);
        let _ = writeln!(out, "{pad}  label=\"{}\";", escape(&group.title));
    }

    fn group_end(out: &mut String, pad: &str) {
        let _ = writeln!(out, "{pad}}}");
    }

    fn edge(out: &mut String, edge: &Edge) {
        let style = match edge.kind {
            EdgeKind::Owns => "style=dashed, arrowhead=none".to_string(),
            EdgeKind::Signs => "label=\"signs\"".to_string(),
            EdgeKind::Imports => format!(
                "label=\"{}\", style=bold, color=\"#1f6feb\", constraint=false",
                escape(edge.label.as_deref().unwrap_or("imports"))
            ),
        };
        let _ = writeln!(out, "  {} -> {} [{style}];", edge.from, edge.to);
    }
}

/// The graph as a DOT document.
pub fn render(graph: &Graph) -> String {
    let mut out = String::new();
    out.push_str("digraph trust {\n");
    out.push_str("  rankdir=TB;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    write_body::<Dot>(&mut out, graph);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_backslashes_and_entities_stay_text() {
        assert_eq!(escape(r#"a"b\c&lt;"#), r#"a\"b\\c&amp;lt;"#);
        // A would-be line break or attribute stays inside the string.
        assert_eq!(escape("x\\n\"];y"), "x\\\\n\\\"];y");
        assert_eq!(escape("\n"), "\\\\u{a}");
    }
}
