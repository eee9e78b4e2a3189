//! The trust tree as a Mermaid flowchart, which GitHub renders in a
//! Markdown ```` ```mermaid ```` block.
//!
//! Every label is a quoted Mermaid string in which only ASCII letters,
//! digits, space and `._-/:,*+=@()` appear as themselves; every other
//! character is a Mermaid entity code (`#34;` for `"`, `#62;` for `>`,
//! `#35;` for `#`), so nothing from the store can end a string, start a
//! link (`-->`), a comment (`%%`), a Markdown string or HTML. Lines are
//! joined with `<br/>`, the only markup written. Ids are generated.

use std::fmt::Write;

use super::{write_body, Edge, EdgeKind, Format, Graph, Group, Node, NodeKind};

/// A label line as the inside of a quoted Mermaid string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || " ._-/:,*+=@()".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", c as u32);
        }
    }
    out
}

fn label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("<br/>")
}

/// Mermaid: a group is a subgraph with a quoted title.
struct Mermaid;

impl Format for Mermaid {
    fn node(out: &mut String, node: &Node, pad: &str) {
        let text = label(&node.lines);
        let shape = match node.kind {
            NodeKind::Operator | NodeKind::Account | NodeKind::User | NodeKind::Invalid => {
                format!("[\"{text}\"]")
            }
            NodeKind::OperatorKey | NodeKind::AccountKey => format!("([\"{text}\"])"),
            NodeKind::Role => format!("(\"{text}\")"),
            NodeKind::Outside => format!("[/\"{text}\"/]"),
        };
        let _ = writeln!(out, "{pad}{}{shape}", node.id);
    }

    fn group_start(out: &mut String, group: &Group, pad: &str) {
        let _ = writeln!(
            out,
            "{pad}subgraph {} [\"{}\"]",
            group.id,
            escape(&group.title)
        );
    }

    fn group_end(out: &mut String, pad: &str) {
        let _ = writeln!(out, "{pad}end");
    }

    fn edge(out: &mut String, edge: &Edge) {
        let link = match edge.kind {
            EdgeKind::Owns => "-.-".to_string(),
            EdgeKind::Signs => "-->|\"signs\"|".to_string(),
            EdgeKind::Imports => format!(
                "==>|\"{}\"|",
                escape(edge.label.as_deref().unwrap_or("imports"))
            ),
        };
        let _ = writeln!(out, "  {} {link} {}", edge.from, edge.to);
    }
}

/// The graph as a Mermaid flowchart.
pub fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart TB\n");
    write_body::<Mermaid>(&mut out, graph);
    let invalid: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Invalid)
        .map(|n| n.id.as_str())
        .collect();
    if !invalid.is_empty() {
        out.push_str("  classDef invalid stroke:#d00,color:#d00,stroke-dasharray:4\n");
        let _ = writeln!(out, "  class {} invalid", invalid.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_that_could_end_a_string_or_start_markup_is_an_entity() {
        assert_eq!(escape("a\"]-->b"), "a#34;#93;--#62;b");
        assert_eq!(
            escape("<b>&#x;%%`|;"),
            "#60;b#62;#38;#35;x#59;#37;#37;#96;#124;#59;"
        );
        assert_eq!(escape("é q.>"), "#233; q.#62;");
    }
}
