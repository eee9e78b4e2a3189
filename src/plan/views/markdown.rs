//! The Markdown view: a plan as a pull-request comment.
//!
//! Layout: a hidden marker line, always the first (so a bot finds and
//! updates its own comment), then for `plan --base` what was compared
//! ([`crate::plan::MergeBase`], inside the limit), a one-line summary and a
//! counts table; then what a reviewer
//! must not miss (deletions apply refuses without `--allow-destroy`,
//! blockers, warnings, lock records); then one collapsible `<details>` per
//! changed object with its reasons and a fenced `diff`; then the users whose
//! effective permissions change, listed by role.
//!
//! A comment holds at most [`LIMIT`] characters. When the whole plan is
//! larger, the summary, the table and the lists above are kept (each list
//! bounded), every object's block is kept and the largest diffs are
//! shortened first. When not even one block per object fits, every object
//! becomes one line with its reasons, deletions first, as many as fit. A
//! note says exactly what was left out and how to see everything. Nothing
//! is cut silently.
//!
//! Everything the manifest, the lock or the store controls is escaped for
//! where it lands: HTML text in `<summary>`, Markdown text in lists (no
//! emphasis, links, HTML or code spans can start), and code in fences whose
//! backtick run is longer than any the content holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rayon::prelude::*;

use super::diff::{self, Line};
use super::{action_sides, effective_side, Expiry};
use crate::plan::{Action, ActionKind, Effect, Plan, Reason};
use crate::safepath::escape_line;

/// Most characters a GitHub pull-request comment holds.
pub const LIMIT: usize = 65_536;

/// Room kept for the note on what was left out and the closing lines.
const RESERVE: usize = 2_000;

/// The plan as a pull-request comment for the manifest at `manifest` (the
/// path as given on the command line), at most [`LIMIT`] characters.
pub fn markdown(plan: &Plan, manifest: &str) -> String {
    render(plan, manifest, LIMIT)
}

/// [`markdown`] with a limit of `limit` characters.
pub fn render(plan: &Plan, manifest: &str, limit: usize) -> String {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "<!-- natsform plan: {} -->",
        html(&escape_line(manifest)).replace("--", "&#45;&#45;")
    );
    // What `plan --base` compared: after the marker (which must come
    // first), inside the limit.
    if let Some(m) = &plan.base {
        for line in super::merge_lines(m, &|t| live_code(t)) {
            let _ = writeln!(head, "{line}\n");
        }
    }
    if plan.is_empty() && plan.effects.is_empty() && plan.blockers.is_empty() {
        if plan.live.is_empty() {
            head.push_str("**natsform plan:** no changes. The store matches the manifest.\n");
            notices(&mut head, plan);
        } else {
            head.push_str("**natsform plan:** no changes. The store matches the manifest, and the live servers hold its accounts.\n\n");
            notices(&mut head, plan);
            live_section(&mut head, plan);
        }
        return head;
    }
    let _ = writeln!(head, "**natsform plan:** {}\n", summary_line(plan));
    counts_table(&mut head, plan);
    notices(&mut head, plan);
    live_section(&mut head, plan);

    let sections = sections(plan);
    let fixed = chars(&head) + RESERVE;
    let budget = limit.saturating_sub(fixed);

    // Every section as a collapsible block with its diff (the largest
    // diffs shortened first), when at least every header fits; each header
    // reserves room for the note that replaces a diff left out.
    let header_sizes: Vec<usize> = sections
        .iter()
        .map(|s| chars(&s.header) + FOOTER + CUT_NOTE)
        .collect();
    let all = vec![true; sections.len()];
    let total = header_sizes.iter().sum::<usize>() + group_sizes(&sections, &all);
    let mut out = head;
    let (shown, shortened, lines_left_out) = if total <= budget {
        let (shortened, left) = write_full(&mut out, plan, &sections, budget - total);
        (all, shortened, left)
    } else {
        (write_compact(&mut out, &sections, budget), 0, 0)
    };
    let compact = total > budget;

    let hidden: Vec<&Section> = sections
        .iter()
        .zip(&shown)
        .filter(|(_, s)| !**s)
        .map(|(s, _)| s)
        .collect();
    if shortened > 0 || compact {
        out.push_str("---\n\n**Not everything fits in a comment** (at most 65,536 characters), so this one leaves out:\n\n");
        if compact {
            out.push_str("- the diff of every object: not even one block per object fits, so each object shown is one line with its reasons (deletions first)\n");
        }
        if shortened > 0 {
            let _ = writeln!(
                out,
                "- {lines_left_out} diff line{} of {shortened} object{} (the largest diffs were shortened first; each says where)",
                plural(lines_left_out),
                plural(shortened)
            );
        }
        if !hidden.is_empty() {
            let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
            for s in &hidden {
                *by_kind.entry(s.kind).or_default() += 1;
            }
            let kinds = by_kind
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "- {} object{} listed in the counts above but not shown one by one: {kinds}",
                hidden.len(),
                plural(hidden.len())
            );
        }
        out.push_str("\nTo see the whole plan, run `natsform plan` locally, or keep the output of `natsform plan` (or `natsform plan --format json`) as a build artifact of this pipeline.\n");
    }
    out
}

/// Writes every section as a `<details>` block with its diff, the bodies
/// cut to fit `room` characters (largest first); returns how many bodies
/// were shortened and how many lines they left out.
fn write_full(out: &mut String, plan: &Plan, sections: &[Section], room: usize) -> (usize, usize) {
    // The diffs, rendered in parallel.
    let bodies: Vec<Vec<String>> = sections.par_iter().map(|s| s.of.diff(plan)).collect();
    let sizes: Vec<usize> = bodies.iter().map(|b| body_size(b)).collect();
    let cap = cap_for(&sizes, room + sections.len() * CUT_NOTE);
    let mut shortened = 0usize;
    let mut lines_left_out = 0usize;
    let mut titles = Titles::default();
    for ((section, body), &size) in sections.iter().zip(&bodies).zip(&sizes) {
        titles.before(out, section);
        out.push_str(&section.header);
        let left_out = write_body(out, body, size, cap);
        if left_out > 0 {
            shortened += 1;
            lines_left_out += left_out;
        }
        out.push_str("</details>\n\n");
    }
    (shortened, lines_left_out)
}

/// Writes as many sections as fit `budget` characters as one line each,
/// deletions first; returns which were shown.
fn write_compact(out: &mut String, sections: &[Section], budget: usize) -> Vec<bool> {
    let mut shown = vec![false; sections.len()];
    // The headings, and a title per role (effects come last, by role).
    let mut total = 200;
    let mut last_group = None;
    let order = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.deletion)
        .chain(sections.iter().enumerate().filter(|(_, s)| !s.deletion));
    for (i, section) in order {
        let mut extra = chars(&section.line);
        if let Some(g) = section.group.as_deref() {
            if last_group != Some(g) {
                extra += chars(g) + 3;
            }
        }
        if total + extra > budget {
            break;
        }
        if section.group.is_some() {
            last_group = section.group.as_deref();
        }
        shown[i] = true;
        total += extra;
    }
    let mut titles = Titles::default();
    for (section, _) in sections.iter().zip(&shown).filter(|(_, s)| **s) {
        titles.before(out, section);
        out.push_str(&section.line);
        titles.list_open = true;
    }
    if titles.list_open {
        out.push('\n');
    }
    shown
}

/// The headings between sections: `### Changes`, then the effects'
/// heading and one title per role.
#[derive(Default)]
struct Titles<'a> {
    changes: bool,
    effects: bool,
    group: Option<&'a str>,
    /// A list of one-line sections is open: a heading must end it.
    list_open: bool,
}

impl<'a> Titles<'a> {
    /// Writes the headings `section` needs.
    fn before(&mut self, out: &mut String, section: &'a Section) {
        let changes = !section.effect && !self.changes;
        let effects = section.effect && !self.effects;
        let group = section.effect && self.group != section.group.as_deref();
        if (changes || effects || group) && std::mem::take(&mut self.list_open) {
            out.push('\n');
        }
        if changes {
            self.changes = true;
            out.push_str("### Changes\n\n");
        }
        if effects {
            self.effects = true;
            out.push_str("### Effective permissions of scoped users\n\nTheir JWTs stay as they are; what nats-server lets them do changes with their role.\n\n");
        }
        if group {
            self.group = section.group.as_deref();
            let _ = writeln!(out, "{}\n", self.group.unwrap_or_default());
        }
    }
}

/// Characters the closing `</details>` and blank line take.
const FOOTER: usize = "</details>\n\n".len();

/// One collapsible block: an action or an effect.
struct Section<'a> {
    /// `<details><summary>…</summary>`, blank line, reasons.
    header: String,
    /// The section as one list line, for a plan too large for blocks.
    line: String,
    /// What the diff is of.
    of: Of<'a>,
    deletion: bool,
    effect: bool,
    /// For effects: the title of their role's group.
    group: Option<String>,
    /// What the note on left-out objects calls it: "to create", ….
    kind: &'static str,
}

/// The change a section's diff shows.
enum Of<'a> {
    Action(&'a Action),
    Effect(&'a Effect),
}

impl Of<'_> {
    /// The diff lines, escaped, without fences.
    fn diff(&self, plan: &Plan) -> Vec<String> {
        let names = &plan.key_names;
        let (before, after) = match self {
            Of::Action(a) => action_sides(a, names, true),
            Of::Effect(e) => (
                effective_side(e.before.as_ref(), names),
                effective_side(e.after.as_ref(), names),
            ),
        };
        diff_lines(&before, &after)
    }
}

fn sections(plan: &Plan) -> Vec<Section<'_>> {
    let mut out: Vec<Section> = plan.actions.iter().map(action_section).collect();
    // Effects by role: the group title names the role and its account.
    let mut effects: Vec<(&Effect, String)> =
        plan.effects.iter().map(|e| (e, role_title(e))).collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, t) in &effects {
        *counts.entry(t.clone()).or_default() += 1;
    }
    effects.sort_by(|a, b| a.1.cmp(&b.1));
    out.extend(effects.into_iter().map(|(e, t)| {
        let n = counts[&t];
        effect_section(e, format!("{t}: {n} user{}", plural(n)))
    }));
    out
}

fn role_title(e: &Effect) -> String {
    let role = e.reasons.iter().find_map(|r| match r {
        Reason::RoleChanged { role, account } => Some((role, account)),
        _ => None,
    });
    match role {
        Some((role, account)) => format!("#### Role {} of {}", code(role), code(account)),
        None => "#### Other users".to_string(),
    }
}

fn action_section(a: &Action) -> Section<'_> {
    let mut header = format!(
        "<details><summary><code>{}</code> <b>{}</b> {}</summary>\n\n",
        html(a.action.symbol()),
        text(&a.address),
        a.action.phrase()
    );
    for r in &a.reasons {
        let _ = writeln!(header, "- {}", md(&r.to_string()));
    }
    if let Some(s) = &a.signer {
        let _ = writeln!(header, "- signed by {}", code(s));
    }
    if let Some(line) = Expiry::of(a).and_then(|e| e.same_rule_line()) {
        let _ = writeln!(header, "- expires {}", md(&line));
    }
    header.push('\n');
    let reasons: Vec<String> = a.reasons.iter().map(|r| md(&r.to_string())).collect();
    let line = format!(
        "- <code>{}</code> <b>{}</b> {}: {}\n",
        html(a.action.symbol()),
        text(&a.address),
        a.action.phrase(),
        reasons.join("; ")
    );
    Section {
        header,
        line,
        of: Of::Action(a),
        deletion: a.action == ActionKind::Delete,
        effect: false,
        group: None,
        kind: match a.action {
            ActionKind::Create => "to create",
            ActionKind::Update => "to update",
            ActionKind::Reissue => "to re-issue",
            ActionKind::Replace => "to replace",
            ActionKind::Delete => "to delete",
        },
    }
}

fn effect_section(e: &Effect, group: String) -> Section<'_> {
    let mut header = format!(
        "<details><summary><code>~</code> <b>{}</b>: effective permissions change; its JWT stays as it is</summary>\n\n",
        text(&e.address),
    );
    for r in &e.reasons {
        let _ = writeln!(header, "- {}", md(&r.to_string()));
    }
    header.push('\n');
    let line = format!(
        "- <code>~</code> <b>{}</b>: effective permissions change\n",
        text(&e.address)
    );
    Section {
        header,
        line,
        of: Of::Effect(e),
        deletion: false,
        effect: true,
        group: Some(group),
        kind: "with changed effective permissions",
    }
}

/// Characters the group titles of the shown effects take.
fn group_sizes(sections: &[Section], shown: &[bool]) -> usize {
    let mut last: Option<&str> = None;
    let mut n = 0;
    let mut any_action = false;
    let mut any_effect = false;
    for (s, _) in sections.iter().zip(shown).filter(|(_, s)| **s) {
        any_action |= !s.effect;
        any_effect |= s.effect;
        if let Some(g) = s.group.as_deref() {
            if last != Some(g) {
                n += chars(g) + 2;
                last = Some(g);
            }
        }
    }
    n + if any_action { 20 } else { 0 } + if any_effect { 160 } else { 0 }
}

/// The diff as the lines of a `diff` block, escaped.
fn diff_lines(before: &str, after: &str) -> Vec<String> {
    let mut lines = Vec::new();
    diff::lines(before, after, &mut |line| {
        lines.push(match line {
            Line::Same(t) => format!("  {}", escape_line(t)),
            Line::Removed(t) => format!("- {}", escape_line(t)),
            Line::Added(t) => format!("+ {}", escape_line(t)),
            Line::Unchanged => "  (claims unchanged)".to_string(),
            Line::Skipped => "  …".to_string(),
            Line::Large { removed, added } => format!(
                "  (a large change: {removed} line{} removed and {added} added, listed without their positions)",
                plural(removed)
            ),
            Line::Hidden(n) => format!(
                "  … {n} more changed lines not shown; `natsform plan --format json` has the claims before and after in full"
            ),
        });
    });
    lines
}

/// Characters a body takes in full: its lines and the fences.
fn body_size(lines: &[String]) -> usize {
    let fence = fence_for(lines).len();
    lines.iter().map(|l| chars(l) + 1).sum::<usize>() + 2 * fence + "diff\n\n\n".len()
}

/// Characters reserved for the note in a shortened body.
const CUT_NOTE: usize = 120;

/// The largest per-body size such that all bodies, each cut to it (with
/// its note), fit in `room`: the largest diffs are shortened first, and
/// none more than it must be.
fn cap_for(sizes: &[usize], room: usize) -> usize {
    let cost = |cap: usize| -> usize {
        sizes
            .iter()
            .map(|&s| if s <= cap { s } else { cap + CUT_NOTE })
            .sum()
    };
    let max = sizes.iter().copied().max().unwrap_or(0);
    if cost(max) <= room {
        return max;
    }
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if cost(mid) <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Writes a body cut to `cap` characters; returns how many lines were
/// left out (0 when it is whole).
fn write_body(out: &mut String, lines: &[String], size: usize, cap: usize) -> usize {
    let fence = fence_for(lines);
    if size <= cap {
        let _ = writeln!(out, "{fence}diff");
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        let _ = writeln!(out, "{fence}\n");
        return 0;
    }
    let overhead = 2 * fence.len() + "diff\n\n\n".len();
    let mut used = overhead;
    let mut kept = 0;
    for l in lines {
        let n = chars(l) + 1;
        if used + n > cap {
            break;
        }
        used += n;
        kept += 1;
    }
    let left = lines.len() - kept;
    if kept == 0 {
        let _ = writeln!(
            out,
            "*The diff ({left} line{}) is left out to fit the comment; `natsform plan` shows it.*\n",
            plural(left)
        );
        return left;
    }
    let _ = writeln!(out, "{fence}diff");
    for l in &lines[..kept] {
        out.push_str(l);
        out.push('\n');
    }
    let _ = writeln!(out, "{fence}\n");
    let _ = writeln!(
        out,
        "*{left} more line{} of this diff left out to fit the comment; `natsform plan` shows them.*\n",
        plural(left)
    );
    left
}

/// A code fence no line of `lines` can close: longer than any backtick
/// run they hold.
fn fence_for(lines: &[String]) -> String {
    let mut longest = 0;
    for l in lines {
        let mut run = 0;
        for c in l.chars() {
            if c == '`' {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// `Plan: …` as one line.
fn summary_line(plan: &Plan) -> String {
    let mut s = super::action_counts(plan);
    if !plan.effects.is_empty() {
        let n = plan.effects.len();
        let _ = write!(
            s,
            "; {n} user{} with changed effective permissions",
            plural(n)
        );
    }
    if !plan.live.is_empty() {
        let c = super::live::counts(plan);
        let _ = write!(
            s,
            "; live servers: {} account{} to push, {} to delete",
            c.push,
            plural(c.push),
            c.delete
        );
        if c.unmanaged > 0 {
            let _ = write!(s, ", {} unmanaged (listed only)", c.unmanaged);
        }
        if c.foreign > 0 {
            let _ = write!(
                s,
                ", {} held for other operators (listed, never deleted)",
                c.foreign
            );
        }
    }
    if let Some(v) = super::vault_summary(plan) {
        let _ = write!(s, "; {}", v.trim_end_matches('.'));
    }
    if !plan.blockers.is_empty() {
        s.push_str("; **apply refuses this plan** (see below)");
    }
    s.push('.');
    s
}

fn counts_table(out: &mut String, plan: &Plan) {
    out.push_str("| | Objects |\n|---|---:|\n");
    for kind in ActionKind::ALL {
        let _ = writeln!(
            out,
            "| <code>{}</code> {} | {} |",
            html(kind.symbol()),
            match kind {
                ActionKind::Create => "create",
                ActionKind::Update => "update",
                ActionKind::Reissue => "re-issue",
                ActionKind::Replace => "replace (new identity key)",
                ActionKind::Delete => "delete",
            },
            plan.count(kind)
        );
    }
    let _ = writeln!(
        out,
        "| users with changed effective permissions | {} |",
        plan.effects.len()
    );
    let _ = writeln!(out, "| keys to generate | {} |", plan.new_keys.len());
    if !plan.live.is_empty() {
        let c = super::live::counts(plan);
        let _ = writeln!(out, "| live servers: accounts to push | {} |", c.push);
        let _ = writeln!(out, "| live servers: accounts to delete | {} |", c.delete);
        let _ = writeln!(
            out,
            "| live servers: unmanaged accounts, listed only (`--prune` deletes them) | {} |",
            c.unmanaged
        );
        if c.foreign > 0 {
            let _ = writeln!(
                out,
                "| live servers: accounts of other operators, listed only (never deleted) | {} |",
                c.foreign
            );
        }
    }
    out.push('\n');
}

/// Most characters of the live servers' section (the diffs of the objects
/// keep most of the room).
const LIVE_MAX: usize = 16_000;

/// Most diff lines of one drifted account in a comment.
const LIVE_DIFF_LINES: usize = 60;

/// `### Live servers`: per operator, the servers that answered, one list
/// line per item, then a block per drifted account with its reasons and
/// diff (`-` the server's, `+` the store's). At most [`LIVE_MAX`]
/// characters; what does not fit is counted.
fn live_section(out: &mut String, plan: &Plan) {
    if plan.live.is_empty() {
        return;
    }
    out.push_str("### Live servers\n\n");
    let mut room = Room::default();
    for lp in &plan.live {
        let heading = format!("**{}**\n\n", super::live::heading(lp, &live_code));
        room.push(out, heading);
        let mut list = String::new();
        if let Some(m) = super::live::malformed(lp) {
            let _ = writeln!(list, "- {}", md(&m));
        }
        for item in super::live::in_order(lp).filter(|i| i.drift.is_none()) {
            let mut line = format!(
                "- <code>{}</code> {}",
                html(super::live::symbol(item, lp.prune)),
                super::live::sentence(item, lp.prune, &live_code)
            );
            if let Some(note) = super::live::changed_here(plan, item) {
                let _ = write!(line, " ({})", md(note));
            }
            line.push('\n');
            if room.fits(chars(&list) + chars(&line)) {
                list.push_str(&line);
            } else {
                room.left_out += 1;
            }
        }
        if !list.is_empty() {
            list.push('\n');
            room.push(out, list);
        }
        for item in super::live::in_order(lp).filter(|i| i.drift.is_some()) {
            let mut block = format!(
                "<details><summary><code>~</code> {}</summary>\n\n",
                super::live::sentence(item, lp.prune, &live_code)
            );
            for r in item.drift.iter().flat_map(|d| &d.reasons) {
                let _ = writeln!(block, "- {}", md(&r.to_string()));
            }
            if let Some(note) = super::live::changed_here(plan, item) {
                let _ = writeln!(block, "- {}", md(note));
            }
            block.push_str("- `-` what the server holds, `+` what the store holds\n\n");
            let (live, store) = super::live::drift_sides(item, &plan.key_names).unwrap_or_default();
            let lines = diff_lines(&live, &store);
            let shown = &lines[..lines.len().min(LIVE_DIFF_LINES)];
            let fence = fence_for(shown);
            let _ = writeln!(block, "{fence}diff");
            for l in shown {
                block.push_str(l);
                block.push('\n');
            }
            let _ = writeln!(block, "{fence}\n");
            if lines.len() > shown.len() {
                let _ = writeln!(
                    block,
                    "*{} more line{} of this diff left out; `natsform plan --live` shows them.*\n",
                    lines.len() - shown.len(),
                    plural(lines.len() - shown.len())
                );
            }
            block.push_str("</details>\n\n");
            room.push(out, block);
        }
    }
    if room.left_out > 0 {
        let _ = writeln!(
            out,
            "- … {} more live part{} left out to fit the comment; `natsform plan --live` lists everything\n",
            room.left_out,
            plural(room.left_out)
        );
    }
}

/// A name from a server or the manifest in the live section, as inline
/// code that no content can close and that mentions nobody.
fn live_code(t: &str) -> String {
    format!("<code>{}</code>", text(t))
}

/// The room left in the live section: what was used, what was left out.
#[derive(Default)]
struct Room {
    used: usize,
    left_out: usize,
}

impl Room {
    fn fits(&self, n: usize) -> bool {
        self.left_out == 0 && self.used + n <= LIVE_MAX
    }

    /// Appends `piece` if it fits; once something is left out, so is
    /// everything after it (the count stays exact).
    fn push(&mut self, out: &mut String, piece: String) {
        let n = chars(&piece);
        if self.fits(n) {
            self.used += n;
            out.push_str(&piece);
        } else {
            self.left_out += 1;
        }
    }
}

/// Most characters of each list before the diffs (deletions, problems,
/// warnings, keys, records): the diffs keep most of the room.
const LIST_MAX: usize = 4_000;

/// Deletions apply refuses, blockers, warnings, keys to generate and lock
/// records: what a reviewer must see before any diff.
fn notices(out: &mut String, plan: &Plan) {
    titled_list(
        out,
        "**Deletions apply refuses unless `--allow-destroy` is given:**",
        plan.protected_deletes.iter().map(|id| code(&id.address())),
        "deletions",
    );
    titled_list(
        out,
        "**Apply refuses this plan:**",
        plan.blockers.iter().map(|b| md(&b.to_string())),
        "problems",
    );
    titled_list(
        out,
        "**Warnings:**",
        plan.warnings.iter().map(|w| md(&w.to_string())),
        "warnings",
    );
    if !plan.new_keys.is_empty() {
        let n = plan.new_keys.len();
        let _ = writeln!(
            out,
            "<details><summary>{n} key{} to generate (seeds are stored encrypted in the vault)</summary>\n",
            plural(n)
        );
        bounded_list(out, plan.new_keys.iter().map(|k| code(k)), "keys");
        out.push_str("</details>\n\n");
    }
    for (heading, items) in super::vault_sections(plan) {
        titled_list(
            out,
            &format!("**{heading}**"),
            items
                .iter()
                .map(|i| code(i))
                .collect::<Vec<_>>()
                .into_iter(),
            "seeds",
        );
    }
    titled_list(
        out,
        "**The lock's revocation record:**",
        plan.lock_records.iter().map(|r| md(&r.to_string())),
        "records",
    );
}

/// `title`, then the [`bounded_list`] of `items`; nothing when there are none.
fn titled_list(
    out: &mut String,
    title: &str,
    items: impl ExactSizeIterator<Item = String>,
    what: &str,
) {
    if items.len() > 0 {
        out.push_str(title);
        out.push_str("\n\n");
        bounded_list(out, items, what);
    }
}

/// A list of at most [`LIST_MAX`] characters: what does not fit is
/// counted, and the reader told where to see it.
fn bounded_list(out: &mut String, items: impl ExactSizeIterator<Item = String>, what: &str) {
    let total = items.len();
    let mut used = 0;
    let mut shown = 0;
    for item in items {
        let line = format!("- {item}\n");
        used += chars(&line);
        if used > LIST_MAX {
            break;
        }
        out.push_str(&line);
        shown += 1;
    }
    if shown < total {
        let _ = writeln!(
            out,
            "- … and {} more {what}, left out to fit the comment; `natsform plan` lists them all",
            total - shown
        );
    }
    out.push('\n');
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Text for HTML (inside `<summary>`, `<code>`, comments): controls
/// escaped by the caller, markup characters as entities.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text in HTML outside `<code>` (an address in `<summary>`): as [`html`],
/// with controls escaped and `@` kept from mentioning anyone.
fn text(s: &str) -> String {
    html(&escape_line(s)).replace('@', NO_MENTION)
}

/// `@` with a zero-width space after it (as an entity): shown as `@`, but
/// GitHub does not notify the user or team a name could spell.
const NO_MENTION: &str = "@&#8203;";

/// Text for a Markdown paragraph or list item: controls escaped, HTML
/// markup as entities, and every character that could start emphasis, a
/// link, a code span, a heading or a table cell backslash-escaped.
fn md(text: &str) -> String {
    let text = escape_line(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str(NO_MENTION),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' | '{' | '}'
            | '+' | '-' | '.' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A name (address, role) as inline code in HTML, which no content can
/// close: `<code>` with entities.
fn code(text: &str) -> String {
    format!("<code>{}</code>", html(&escape_line(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outgrow_the_backticks_inside() {
        assert_eq!(fence_for(&["a".into()]), "```");
        assert_eq!(fence_for(&["+ x ````` y".into()]), "``````");
    }

    #[test]
    fn markdown_text_cannot_open_markup() {
        let s = md("`x` <details> --> *a* [l](u) @org/team \u{1b}[2J");
        assert!(!s.contains('<') && !s.contains('>'));
        assert!(s.contains("@&#8203;org/team"));
        assert!(!s.contains('\u{1b}'));
        assert!(s.contains("\\`x\\`"));
    }

    /// A plan built as data: `users` users deleted and as many whose
    /// effective permissions change under two roles.
    fn big_plan(users: usize) -> Plan {
        use crate::plan::{Action, Effect, Reason};
        use crate::tree::ObjectId as Id;
        let mut plan = Plan::default();
        for u in 0..users {
            let id = Id::user("O", "A", &format!("gone{u:05}"));
            plan.actions.push(Action {
                address: id.address(),
                id,
                action: ActionKind::Delete,
                reasons: vec![Reason::NotInManifest],
                signer: None,
                before: None,
                after: None,
            });
        }
        for u in 0..users {
            let id = Id::user("O", "B", &format!("u{u:05}"));
            plan.effects.push(Effect {
                address: id.address(),
                id,
                reasons: vec![Reason::RoleChanged {
                    role: format!("role{}", u % 2),
                    account: "account.O/B".into(),
                }],
                before: None,
                after: None,
            });
        }
        plan
    }

    #[test]
    fn the_merge_base_comes_after_the_marker_and_inside_the_limit() {
        use crate::plan::{MergeBase, Revision};
        let mut plan = big_plan(20_000);
        // A branch name as long as git allows, with markup in it.
        let name = format!("<b>@team</b>`{}", "x".repeat(240));
        plan.base = Some(MergeBase {
            manifest: "deploy/natsform.toml".into(),
            head: Some(Revision {
                name: name.clone(),
                commit: "abc1234".into(),
            }),
            base: Revision {
                name,
                commit: "def5678".into(),
            },
            base_has_lock: false,
            base_has_store: true,
        });
        let md = markdown(&plan, "deploy/natsform.toml");
        assert!(chars(&md) <= LIMIT, "{}", chars(&md));
        let mut lines = md.lines();
        assert_eq!(
            lines.next(),
            Some("<!-- natsform plan: deploy/natsform.toml -->")
        );
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("Plan of the merge: <code>deploy/natsform.toml</code> of <code>&lt;b&gt;@&#8203;team&lt;/b&gt;`xxx"),
            "{header}"
        );
        assert!(md.contains("Base <code>"), "{md}");
        assert!(md.contains("has a store but no natsform.lock"), "{md}");
        assert!(!md.contains("<b>@team"), "{md}");
        // As tight as it gets: the header fits the same limit.
        for limit in [8_000, 20_000] {
            assert!(chars(&render(&plan, "m.toml", limit)) <= limit);
        }
    }

    #[test]
    fn a_small_plan_is_whole_and_a_large_one_lines_up_deletions_first() {
        let whole = render(&big_plan(3), "m.toml", LIMIT);
        assert!(!whole.contains("Not everything fits"), "{whole}");
        assert_eq!(whole.matches("<details><summary><code>").count(), 6);
        assert_eq!(whole.matches("#### Role <code>role0</code>").count(), 1);
        assert_eq!(whole.matches("#### Role <code>role1</code>").count(), 1);

        let limit = 20_000;
        let md = render(&big_plan(2_000), "m.toml", limit);
        assert!(md.chars().count() <= limit, "{}", md.chars().count());
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with("- <code>")).collect();
        assert!(lines.len() > 100, "{md}");
        // Deletions come first, and no effect is listed before them all are.
        let deletions = lines
            .iter()
            .filter(|l| l.contains("will be deleted"))
            .count();
        assert!(lines[..deletions]
            .iter()
            .all(|l| l.contains("will be deleted")));
        let left: usize = md
            .lines()
            .find(|l| l.contains("not shown one by one"))
            .and_then(|l| l.strip_prefix("- "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(lines.len() + left, 4_000);
    }

    #[test]
    fn the_cap_shortens_the_largest_first() {
        let sizes = [100, 5_000, 20_000];
        let cap = cap_for(&sizes, 10_000);
        assert!(cap < 5_000 && cap > 4_000, "{cap}");
        assert_eq!(cap_for(&sizes, 100_000), 20_000);
        assert_eq!(cap_for(&[], 0), 0);
    }
}
