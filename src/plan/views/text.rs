//! The text view: Terraform-style, for a terminal. Byte for byte what
//! `natsform plan` has always printed; colour (anstyle) only when asked.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style as Ansi};
use rayon::prelude::*;

use super::diff::{self, Line};
use super::{action_sides, effective_side, Expiry};
use crate::plan::render_claims::Names;
use crate::plan::{Action, ActionKind, Effect, Plan};

/// Colour, or none. The colours are anstyle styles; whether a stream
/// shows them is decided by the caller (anstream).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, style: Ansi, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    /// The colour of an action kind.
    pub fn of(kind: ActionKind) -> Ansi {
        let color = match kind {
            ActionKind::Create => AnsiColor::Green,
            ActionKind::Update => AnsiColor::Yellow,
            ActionKind::Reissue => AnsiColor::Cyan,
            ActionKind::Replace => AnsiColor::Magenta,
            ActionKind::Delete => AnsiColor::Red,
        };
        Ansi::new().fg_color(Some(color.into()))
    }

    fn for_action(&self, kind: ActionKind, text: &str) -> String {
        self.paint(Self::of(kind), text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Ansi::new().bold(), text)
    }
}

/// The text plan.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    write(&mut out, plan, style);
    out
}

/// The text plan, written piece by piece: a plan of 100,000 users is not
/// worth holding twice in memory just to print it.
pub fn write(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) {
    let _ = write_inner(out, plan, style);
}

/// Objects rendered at a time: in parallel, then written in order, so
/// rendering keeps the cores busy and holds only this many texts.
const CHUNK: usize = 256;

fn write_inner(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) -> std::fmt::Result {
    if let Some(m) = &plan.base {
        for line in super::merge_lines(m, &|t| esc(t).into_owned()) {
            writeln!(out, "{line}")?;
        }
        out.write_char('\n')?;
    }
    if plan.is_empty() && plan.effects.is_empty() && plan.blockers.is_empty() {
        warnings(out, plan, style);
        if plan.live.is_empty() {
            out.write_str("No changes. The store matches the manifest.\n")?;
        } else {
            live_text(out, plan, style)?;
            out.write_str("No changes. The store matches the manifest, and the live servers hold its accounts.\n")?;
            let c = super::live::counts(plan);
            if c.unmanaged > 0 || c.foreign > 0 {
                if let Some(s) = super::live::summary(plan) {
                    writeln!(out, "{s}.")?;
                }
            }
        }
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
    for (heading, items) in super::vault_sections(plan) {
        writeln!(out, "{}", style.bold(heading))?;
        let sign = if heading.starts_with("Seeds to re-seal") {
            style.for_action(ActionKind::Update, "~")
        } else {
            style.for_action(ActionKind::Delete, "-")
        };
        for item in items {
            writeln!(out, "  {sign} {}", esc(&item))?;
        }
        out.write_char('\n')?;
    }
    let names = &plan.key_names;
    in_parallel_chunks(out, &plan.actions, |s, a| action_text(s, a, style, names))?;
    in_parallel_chunks(out, &plan.effects, |s, e| effect_text(s, e, style, names))?;
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
    live_text(out, plan, style)?;
    for id in &plan.protected_deletes {
        let address = id.address();
        let address = esc(&address);
        let warning = format!("Warning: {address} would be deleted; apply refuses this unless --allow-destroy is given.");
        let _ = writeln!(out, "{}", style.for_action(ActionKind::Delete, &warning));
    }
    warnings(out, plan, style);
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

/// One `Warning: …` line per warning (apply cannot fix them).
fn warnings(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) {
    for w in &plan.warnings {
        let w = crate::safepath::escape_controls(&w.to_string()).into_owned();
        let _ = writeln!(
            out,
            "{}",
            style.for_action(ActionKind::Update, &format!("Warning: {w}"))
        );
    }
}

/// Renders `items` a chunk at a time on every core, writing each chunk in
/// order as it is done: a plan of 100,000 users is never held as text.
fn in_parallel_chunks<T: Sync>(
    out: &mut dyn std::fmt::Write,
    items: &[T],
    render: impl Fn(&mut String, &T) + Sync,
) -> std::fmt::Result {
    for chunk in items.chunks(CHUNK) {
        let texts: Vec<String> = chunk
            .par_iter()
            .map(|item| {
                let mut s = String::new();
                render(&mut s, item);
                s.push('\n');
                s
            })
            .collect();
        for t in texts {
            out.write_str(&t)?;
        }
    }
    Ok(())
}

/// `Plan: N to create, …` — the last line of a text plan.
pub fn summary(plan: &Plan) -> String {
    let mut s = format!("Plan: {}.", super::action_counts(plan));
    if !plan.effects.is_empty() {
        let n = plan.effects.len();
        s.push_str(&format!(
            " {n} user{} with changed effective permissions.",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(live) = super::live::summary(plan) {
        s.push(' ');
        s.push_str(&live);
        s.push('.');
    }
    if let Some(vault) = super::vault_summary(plan) {
        s.push(' ');
        s.push_str(&vault);
    }
    s
}

/// The "Live servers" part: per operator, the servers that answered, then
/// one line per item by kind; a drift shows its reasons and the claims
/// diff (`-` what the server holds, `+` what the store holds).
fn live_text(out: &mut dyn std::fmt::Write, plan: &Plan, style: Style) -> std::fmt::Result {
    let esc = |t: &str| esc(t).into_owned();
    for lp in &plan.live {
        writeln!(out, "{}", style.bold(&super::live::heading(lp, &esc)))?;
        if let Some(m) = super::live::malformed(lp) {
            writeln!(out, "  note: {m}")?;
        }
        for item in super::live::in_order(lp) {
            let line = format!(
                "{} {}",
                super::live::symbol(item, lp.prune),
                super::live::sentence(item, lp.prune, &esc)
            );
            let line = match super::live::colour(item, lp.prune) {
                Some(kind) => style.for_action(kind, &line),
                None => line,
            };
            writeln!(out, "  {line}")?;
            if let Some(d) = &item.drift {
                for r in &d.reasons {
                    let r = r.to_string();
                    writeln!(out, "    reason: {}", crate::safepath::escape_controls(&r))?;
                }
            }
            if let Some(note) = super::live::changed_here(plan, item) {
                writeln!(out, "    note: {note}")?;
            }
            if let Some((live, store)) = super::live::drift_sides(item, &plan.key_names) {
                writeln!(out, "    (- what the server holds, + what the store holds)")?;
                let mut diff = String::new();
                write_diff(&mut diff, &live, &store, style);
                out.write_str(&diff)?;
            }
        }
        out.write_char('\n')?;
    }
    Ok(())
}

/// Text that did not come from natsform itself (addresses, reasons, claim
/// lines), made safe for a terminal: controls and newlines escaped as
/// `\u{1b}`, so nothing can move the cursor, clear the screen or start a
/// line that looks like natsform's. The renderer's own colours are added
/// after escaping.
fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    crate::safepath::escape_line(text)
}

fn action_text(out: &mut String, a: &Action, style: Style, names: &(impl Names + ?Sized)) {
    let address = esc(&a.address);
    let header = format!("# {address} {}", a.action.phrase());
    let _ = writeln!(out, "  {}", style.for_action(a.action, &header));
    for r in &a.reasons {
        let r = r.to_string();
        let _ = writeln!(out, "    reason: {}", crate::safepath::escape_controls(&r));
    }
    if let Some(s) = &a.signer {
        let _ = writeln!(out, "    signed by: {}", esc(s));
    }
    if let Some(line) = Expiry::of(a).and_then(|e| e.same_rule_line()) {
        let _ = writeln!(out, "    expires: {line}");
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.for_action(a.action, a.action.symbol()),
        style.bold(&address)
    );
    if super::sides_render_alike(a) {
        // What the diff of the two renderings would say, without them.
        write_diff(out, "", "", style);
        return;
    }
    let (before, after) = action_sides(a, names, true);
    write_diff(out, &before, &after, style);
}

fn effect_text(out: &mut String, e: &Effect, style: Style, names: &(impl Names + ?Sized)) {
    let address = esc(&e.address);
    let header = format!("# {address}: effective permissions change; its JWT stays as it is");
    let _ = writeln!(out, "  {}", style.for_action(ActionKind::Update, &header));
    for r in &e.reasons {
        let r = r.to_string();
        let _ = writeln!(out, "    reason: {}", crate::safepath::escape_controls(&r));
    }
    let _ = writeln!(
        out,
        "  {} {}",
        style.for_action(ActionKind::Update, "~"),
        style.bold(&address)
    );
    let before = effective_side(e.before.as_ref(), names);
    let after = effective_side(e.after.as_ref(), names);
    write_diff(out, &before, &after, style);
}

/// A unified diff: every line of a create or delete, and the changes of an
/// update with a few lines of context, `…` marking what is left out.
pub(crate) fn write_diff(out: &mut String, before: &str, after: &str, style: Style) {
    diff::lines(before, after, &mut |line| {
        let _ = match line {
            Line::Same(text) => writeln!(out, "      {}", esc(text)),
            Line::Removed(text) => writeln!(
                out,
                "    {}",
                style.for_action(ActionKind::Delete, &format!("- {}", esc(text)))
            ),
            Line::Added(text) => writeln!(
                out,
                "    {}",
                style.for_action(ActionKind::Create, &format!("+ {}", esc(text)))
            ),
            Line::Unchanged => writeln!(out, "      (claims unchanged)"),
            Line::Skipped => writeln!(out, "      …"),
            Line::Large { removed, added } => writeln!(
                out,
                "      (a large change: {removed} line{} removed and {added} added, listed without their positions)",
                if removed == 1 { "" } else { "s" },
            ),
            Line::Hidden(hidden) => writeln!(
                out,
                "      … {hidden} more changed lines not shown; `natsform plan --json` has the claims before and after in full"
            ),
        };
    });
}
