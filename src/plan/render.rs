//! Views of a plan: Terraform-style text for people (with or without
//! colour) and a versioned JSON document for machines.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::{Action, ActionKind, Effect, Plan};

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
    write_text(&mut out, plan, style);
    out
}

/// The text plan, written piece by piece: a plan of 100,000 users is not
/// worth holding twice in memory just to print it.
pub fn write_text(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) {
    let _ = write_text_inner(out, plan, style);
}

fn write_text_inner(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) -> std::fmt::Result {
    if plan.is_empty() && plan.effects.is_empty() && plan.blockers.is_empty() {
        for w in &plan.warnings {
            let w = crate::safepath::escape_controls(w);
            let _ = writeln!(
                out,
                "{}",
                style.for_action(ActionKind::Update, &format!("Warning: {w}"))
            );
        }
        out.write_str("No changes. The store matches the manifest.\n")?;
        return Ok(());
    }
    if !plan.new_keys.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.bold("Keys to generate (seeds are stored encrypted in the vault):")
        );
        for k in &plan.new_keys {
            let k = esc(k);
            let _ = writeln!(out, "  {} {k}", style.for_action(ActionKind::Create, "+"));
        }
        out.write_char('\n')?;
    }
    for action in &plan.actions {
        action_text(out, action, style);
        out.write_char('\n')?;
    }
    for effect in &plan.effects {
        effect_text(out, effect, style);
        out.write_char('\n')?;
    }
    for record in &plan.lock_records {
        let _ = writeln!(
            out,
            "  {} {record}",
            style.for_action(ActionKind::Update, "~")
        );
    }
    if !plan.lock_records.is_empty() {
        out.write_char('\n')?;
    }
    for address in &plan.protected_deletes {
        let address = esc(address);
        let warning = format!("Warning: {address} would be deleted; apply refuses this unless --allow-destroy is given.");
        let _ = writeln!(out, "{}", style.for_action(ActionKind::Delete, &warning));
    }
    for w in &plan.warnings {
        let w = crate::safepath::escape_controls(w);
        let _ = writeln!(
            out,
            "{}",
            style.for_action(ActionKind::Update, &format!("Warning: {w}"))
        );
    }
    for b in &plan.blockers {
        let _ = writeln!(
            out,
            "{}",
            style.for_action(ActionKind::Delete, &format!("Error: {b}"))
        );
    }
    if !plan.protected_deletes.is_empty() || !plan.warnings.is_empty() || !plan.blockers.is_empty()
    {
        out.write_char('\n')?;
    }
    out.write_str(&summary(plan))?;
    out.write_char('\n')?;
    Ok(())
}

/// `Plan: N to create, …` — the last line of a text plan.
pub fn summary(plan: &Plan) -> String {
    let mut s = format!(
        "Plan: {} to create, {} to update, {} to re-issue, {} to replace, {} to delete.",
        plan.count(ActionKind::Create),
        plan.count(ActionKind::Update),
        plan.count(ActionKind::Reissue),
        plan.count(ActionKind::Replace),
        plan.count(ActionKind::Delete)
    );
    if !plan.effects.is_empty() {
        let n = plan.effects.len();
        s.push_str(&format!(
            " {n} user{} with changed effective permissions.",
            if n == 1 { "" } else { "s" }
        ));
    }
    s
}

/// Text that did not come from natsform itself (addresses, reasons, claim
/// lines), made safe for a terminal: controls and newlines escaped as
/// `\u{1b}`, so nothing can move the cursor, clear the screen or start a
/// line that looks like natsform's. The renderer's own colours are added
/// after escaping.
fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    crate::safepath::escape_line(text)
}

/// Unchanged lines shown around each change of an update.
const CONTEXT_LINES: usize = 4;

fn action_text(out: &mut dyn std::fmt::Write, a: &Action, style: Style) {
    let address = esc(&a.address);
    let header = format!("# {address} {}", a.action.phrase());
    let _ = writeln!(out, "  {}", style.for_action(a.action, &header));
    for r in &a.reasons {
        let _ = writeln!(out, "    reason: {}", crate::safepath::escape_controls(r));
    }
    if let Some(s) = &a.signer {
        let _ = writeln!(out, "    signed by: {}", esc(s));
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.for_action(a.action, a.action.symbol()),
        style.bold(&address)
    );
    diff_text(
        out,
        a.before.as_deref().unwrap_or(""),
        a.after.as_deref().unwrap_or(""),
        style,
    );
}

fn effect_text(out: &mut dyn std::fmt::Write, e: &Effect, style: Style) {
    let address = esc(&e.address);
    let header = format!("# {address}: effective permissions change; its JWT stays as it is");
    let _ = writeln!(out, "  {}", style.for_action(ActionKind::Update, &header));
    for r in &e.reasons {
        let _ = writeln!(out, "    reason: {}", crate::safepath::escape_controls(r));
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.for_action(ActionKind::Update, "~"),
        style.bold(&address)
    );
    diff_text(out, &e.before, &e.after, style);
}

/// A unified diff: every line of a create or delete, and the changes of an
/// update with a few lines of context, `…` marking what is left out.
fn diff_text(out: &mut dyn std::fmt::Write, before: &str, after: &str, style: Style) {
    let diff = TextDiff::from_lines(before, after);
    let line = |out: &mut dyn std::fmt::Write, tag: ChangeTag, text: &str| {
        let text = esc(text.trim_end_matches('\n'));
        let _ = match tag {
            ChangeTag::Equal => writeln!(out, "      {text}"),
            ChangeTag::Delete => writeln!(
                out,
                "    {}",
                style.for_action(ActionKind::Delete, &format!("- {text}"))
            ),
            ChangeTag::Insert => writeln!(
                out,
                "    {}",
                style.for_action(ActionKind::Create, &format!("+ {text}"))
            ),
        };
    };
    if before == after {
        let _ = writeln!(out, "      (claims unchanged)");
        return;
    }
    if before.is_empty() || after.is_empty() {
        for change in diff.iter_all_changes() {
            line(out, change.tag(), change.value());
        }
        return;
    }
    let total = before.lines().count();
    let mut shown_until = 0;
    for group in diff.grouped_ops(CONTEXT_LINES) {
        let first = group.first().map(|op| op.old_range().start).unwrap_or(0);
        if first > shown_until {
            let _ = writeln!(out, "      …");
        }
        for op in &group {
            for change in diff.iter_changes(op) {
                line(out, change.tag(), change.value());
            }
            shown_until = op.old_range().end;
        }
    }
    if shown_until < total {
        let _ = writeln!(out, "      …");
    }
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    /// Set in saved plans (`plan --out`): what the plan was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    changes: bool,
    summary: JsonSummary,
    new_keys: &'a [String],
    protected_deletes: &'a [String],
    warnings: &'a [String],
    /// Changes to the lock's revocation record that no action carries.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    lock_records: &'a [String],
    /// Problems apply refuses (missing or damaged seeds, shared keys).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    blockers: &'a [String],
    actions: &'a [Action],
    effects: &'a [Effect],
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
    json_document(plan, None)
}

/// The JSON document, with the fingerprint of its inputs when saved.
pub fn json_document(plan: &Plan, fingerprint: Option<&str>) -> String {
    let doc = JsonPlan {
        format_version: JSON_FORMAT_VERSION,
        fingerprint,
        changes: !plan.is_empty(),
        summary: JsonSummary {
            create: plan.count(ActionKind::Create),
            update: plan.count(ActionKind::Update),
            reissue: plan.count(ActionKind::Reissue),
            replace: plan.count(ActionKind::Replace),
            delete: plan.count(ActionKind::Delete),
        },
        new_keys: &plan.new_keys,
        protected_deletes: &plan.protected_deletes,
        warnings: &plan.warnings,
        lock_records: &plan.lock_records,
        blockers: &plan.blockers,
        actions: &plan.actions,
        effects: &plan.effects,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("plan serializes");
    s.push('\n');
    s
}
