//! The diff of two claim renderings, as lines for a view to print: exact
//! (with context) for ordinary changes, bounded and linear-time for very
//! large ones.

use similar::{ChangeTag, TextDiff};

/// One line of a diff. Text is as rendered, without its newline and not
/// yet escaped: each view escapes for its medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
    /// Both sides render the same.
    Unchanged,
    /// Unchanged lines left out (`…`).
    Skipped,
    /// A change too large to diff exactly: this many lines removed and
    /// added, listed without their positions.
    Large {
        removed: usize,
        added: usize,
    },
    /// Changed lines of a large change that are not listed.
    Hidden(usize),
}

/// Unchanged lines shown around each change of an update.
const CONTEXT_LINES: usize = 4;

/// A unified diff: every line of a create or delete, and the changes of an
/// update with a few lines of context, `…` marking what is left out.
pub fn lines(before: &str, after: &str, emit: &mut dyn FnMut(Line<'_>)) {
    if before == after {
        emit(Line::Unchanged);
        return;
    }
    if before.is_empty() || after.is_empty() {
        // Linear: one side is empty.
        let diff = TextDiff::from_lines(before, after);
        for change in diff.iter_all_changes() {
            emit(line(change.tag(), change.value()));
        }
        return;
    }
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let new: Vec<&str> = after.split_inclusive('\n').collect();
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if (old.len() - head - tail) + (new.len() - head - tail) > EXACT_DIFF_MAX_LINES {
        large_diff(&old, &new, head, tail, emit);
        return;
    }
    let diff = TextDiff::from_lines(before, after);
    let total = before.lines().count();
    let mut shown_until = 0;
    for group in diff.grouped_ops(CONTEXT_LINES) {
        let first = group.first().map(|op| op.old_range().start).unwrap_or(0);
        if first > shown_until {
            emit(Line::Skipped);
        }
        for op in &group {
            for change in diff.iter_changes(op) {
                emit(line(change.tag(), change.value()));
            }
            shown_until = op.old_range().end;
        }
    }
    if shown_until < total {
        emit(Line::Skipped);
    }
}

/// Above this many changed lines (old and new, between the common head
/// and tail) an update is not diffed exactly: the exact diff costs
/// O((N+M)·D), seconds for an allow list of 40,000 subjects.
const EXACT_DIFF_MAX_LINES: usize = 4_000;

/// Most changed lines [`large_diff`] prints.
const LARGE_DIFF_SHOWN: usize = 400;

/// The view of an update too large to diff exactly, in linear time and
/// deterministic: a few lines of context, then the lines that are gone
/// (in their old order) and the lines that are new (in their new order),
/// matched as multisets so lines that only moved are not listed; at most
/// [`LARGE_DIFF_SHOWN`] of them, and a line saying how many more there are
/// and where to see everything.
fn large_diff(
    old: &[&str],
    new: &[&str],
    head: usize,
    tail: usize,
    emit: &mut dyn FnMut(Line<'_>),
) {
    use std::collections::HashMap;
    let old_mid = &old[head..old.len() - tail];
    let new_mid = &new[head..new.len() - tail];
    let not_in = |lines: &[&str], other: &[&str]| -> Vec<usize> {
        let mut left: HashMap<&str, usize> = HashMap::new();
        for l in other {
            *left.entry(l).or_default() += 1;
        }
        (0..lines.len())
            .filter(|&i| match left.get_mut(lines[i]) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .collect()
    };
    let removed = not_in(old_mid, new_mid);
    let added = not_in(new_mid, old_mid);
    let show_removed = removed
        .len()
        .min((LARGE_DIFF_SHOWN / 2).max(LARGE_DIFF_SHOWN.saturating_sub(added.len())));
    let show_added = added.len().min(LARGE_DIFF_SHOWN - show_removed);

    if head > CONTEXT_LINES {
        emit(Line::Skipped);
    }
    for l in &old[head.saturating_sub(CONTEXT_LINES)..head] {
        emit(line(ChangeTag::Equal, l));
    }
    emit(Line::Large {
        removed: removed.len(),
        added: added.len(),
    });
    for &i in &removed[..show_removed] {
        emit(line(ChangeTag::Delete, old_mid[i]));
    }
    for &i in &added[..show_added] {
        emit(line(ChangeTag::Insert, new_mid[i]));
    }
    let hidden = removed.len() + added.len() - show_removed - show_added;
    if hidden > 0 {
        emit(Line::Hidden(hidden));
    }
    let after_tail = &new[new.len() - tail..];
    for l in &after_tail[..tail.min(CONTEXT_LINES)] {
        emit(line(ChangeTag::Equal, l));
    }
    if tail > CONTEXT_LINES {
        emit(Line::Skipped);
    }
}

fn line(tag: ChangeTag, text: &str) -> Line<'_> {
    let text = text.trim_end_matches('\n');
    match tag {
        ChangeTag::Equal => Line::Same(text),
        ChangeTag::Delete => Line::Removed(text),
        ChangeTag::Insert => Line::Added(text),
    }
}

#[cfg(test)]
mod diff_tests {
    use super::*;
    use crate::plan::views::Style;

    fn lines(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix}{i}\n")).collect()
    }

    fn render(before: &str, after: &str) -> String {
        let mut out = String::new();
        crate::plan::views::text::write_diff(&mut out, before, after, Style { color: false });
        out
    }

    #[test]
    fn changes_up_to_the_limit_are_diffed_exactly_and_larger_ones_summarised() {
        let half = EXACT_DIFF_MAX_LINES / 2;
        let common = lines("same", 10);
        let exact = render(
            &format!("{common}{}{common}", lines("a", half)),
            &format!("{common}{}{common}", lines("b", half)),
        );
        assert!(!exact.contains("a large change"));
        assert_eq!(
            exact.lines().filter(|l| l.starts_with("    - ")).count(),
            half
        );
        let large = render(
            &format!("{common}{}{common}", lines("a", half + 1)),
            &format!("{common}{}{common}", lines("b", half + 1)),
        );
        assert!(large.contains(&format!(
            "(a large change: {} lines removed and {} added, listed without their positions)",
            half + 1,
            half + 1
        )));
        assert!(large.contains(&format!(
            "… {} more changed lines not shown",
            2 * (half + 1) - LARGE_DIFF_SHOWN
        )));
        // Context: `…`, four lines before and after the change, `…`.
        assert!(large.starts_with("      …\n      same6\n"), "{large}");
        assert!(large.ends_with("      same3\n      …\n"), "{large}");
    }

    #[test]
    fn the_large_view_lists_moved_lines_as_unchanged_and_duplicates_by_count() {
        let n = EXACT_DIFF_MAX_LINES;
        let before = format!("{}x\nx\n", lines("a", n));
        // Reversed order, one `x` fewer, one new line.
        let mut rev: Vec<String> = (0..n).rev().map(|i| format!("a{i}\n")).collect();
        rev.push("x\nnew\n".into());
        let after: String = rev.concat();
        let out = render(&before, &after);
        assert!(
            out.contains("(a large change: 1 line removed and 1 added"),
            "{out}"
        );
        assert!(out.contains("    - x\n"));
        assert!(out.contains("    + new\n"));
        assert!(!out.contains("more changed lines"));
    }
}
