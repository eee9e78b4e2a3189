//! Views of a plan: Terraform-style text for people (with or without
//! colour) and a versioned JSON document for machines.

use std::fmt::Write;

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::{Action, ActionKind, Plan};

/// Version of the `--json` plan document; bumped on incompatible changes.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn for_action(&self, kind: ActionKind, text: &str) -> String {
        let code = match kind {
            ActionKind::Create => "32",
            ActionKind::Update => "33",
            ActionKind::Reissue => "36",
            ActionKind::Replace => "35",
            ActionKind::Delete => "31",
        };
        self.paint(code, text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// The text plan.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The store matches the manifest.\n");
        return out;
    }
    if !plan.new_keys.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.bold("Keys to generate (seeds are stored encrypted in the vault):")
        );
        for k in &plan.new_keys {
            let _ = writeln!(out, "  {} {k}", style.for_action(ActionKind::Create, "+"));
        }
        out.push('\n');
    }
    for action in &plan.actions {
        action_text(&mut out, action, style);
        out.push('\n');
    }
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

/// `Plan: N to create, …` — the last line of a text plan.
pub fn summary(plan: &Plan) -> String {
    format!(
        "Plan: {} to create, {} to update, {} to re-issue, {} to replace, {} to delete.",
        plan.count(ActionKind::Create),
        plan.count(ActionKind::Update),
        plan.count(ActionKind::Reissue),
        plan.count(ActionKind::Replace),
        plan.count(ActionKind::Delete)
    )
}

fn action_text(out: &mut String, a: &Action, style: Style) {
    let _ = writeln!(
        out,
        "  {}",
        style.for_action(a.action, &format!("# {} {}", a.address, a.action.phrase()))
    );
    for r in &a.reasons {
        let _ = writeln!(out, "    reason: {r}");
    }
    if let Some(s) = &a.signer {
        let _ = writeln!(out, "    signed by: {s}");
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.for_action(a.action, a.action.symbol()),
        style.bold(&a.address)
    );
    let before = a.before.as_deref().unwrap_or("");
    let after = a.after.as_deref().unwrap_or("");
    let diff = TextDiff::from_lines(before, after);
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        match change.tag() {
            ChangeTag::Equal => {
                let _ = writeln!(out, "      {line}");
            }
            ChangeTag::Delete => {
                let _ = writeln!(
                    out,
                    "    {}",
                    style.for_action(ActionKind::Delete, &format!("- {line}"))
                );
            }
            ChangeTag::Insert => {
                let _ = writeln!(
                    out,
                    "    {}",
                    style.for_action(ActionKind::Create, &format!("+ {line}"))
                );
            }
        }
    }
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    changes: bool,
    summary: JsonSummary,
    new_keys: &'a [String],
    actions: &'a [Action],
}

#[derive(Serialize)]
struct JsonSummary {
    create: usize,
    update: usize,
    reissue: usize,
    replace: usize,
    delete: usize,
}

/// The plan as a versioned JSON document (pretty-printed, stable order).
pub fn json(plan: &Plan) -> String {
    let doc = JsonPlan {
        format_version: JSON_FORMAT_VERSION,
        changes: !plan.is_empty(),
        summary: JsonSummary {
            create: plan.count(ActionKind::Create),
            update: plan.count(ActionKind::Update),
            reissue: plan.count(ActionKind::Reissue),
            replace: plan.count(ActionKind::Replace),
            delete: plan.count(ActionKind::Delete),
        },
        new_keys: &plan.new_keys,
        actions: &plan.actions,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("plan serializes");
    s.push('\n');
    s
}
