//! Views of a plan: the plan is data ([`super::Plan`]); each view turns it
//! into one format and owns its wording.
//!
//! - [`text`]: Terraform-style text for a terminal, with or without colour.
//! - [`json`]: a versioned, documented JSON document for machines (and the
//!   saved plans `apply FILE` checks).
//! - [`markdown`]: a pull-request comment, bounded in size.
//!
//! Everything that came from the manifest, the lock or the store is escaped
//! by the view that prints it, for the medium it prints to.

mod diff;
pub mod json;
pub mod live;
pub mod markdown;
pub mod text;

use serde_json::{json, Value};

use super::actions::{Action, Claims, EffectivePermissions};
use super::effective;
use super::render_claims::{self, Names};

pub use text::Style;

/// `N to create, N to update, N to re-issue, N to replace, N to delete`:
/// the counts every view's summary starts with.
pub(crate) fn action_counts(plan: &super::Plan) -> String {
    use super::ActionKind::*;
    format!(
        "{} to create, {} to update, {} to re-issue, {} to replace, {} to delete",
        plan.count(Create),
        plan.count(Update),
        plan.count(Reissue),
        plan.count(Replace),
        plan.count(Delete)
    )
}

/// The lines that say what `plan --base` compared, each piece that came
/// from the command line or the repository passed through `name` (the
/// view's escaping).
pub(crate) fn merge_lines(m: &super::MergeBase, name: &dyn Fn(&str) -> String) -> Vec<String> {
    use crate::workspace::LOCK_FILE;
    let rev = |r: &super::Revision| format!("{} ({})", name(&r.name), name(&r.commit));
    let from = m
        .head
        .as_ref()
        .map_or_else(|| "the working tree".to_string(), rev);
    let at = rev(&m.base);
    let mut lines = vec![format!(
        "Plan of the merge: {} of {from} against the lock, store and vault at {at}.",
        name(&m.manifest)
    )];
    match (m.base_has_lock, m.base_has_store) {
        (false, false) => lines.push(format!(
            "Base {at} has no {LOCK_FILE} or store for this manifest: every object is created."
        )),
        (false, true) => lines.push(format!(
            "Base {at} has a store but no {LOCK_FILE} for this manifest."
        )),
        (true, false) => lines.push(format!(
            "Base {at} has a {LOCK_FILE} but no store for this manifest."
        )),
        (true, true) => {}
    }
    lines
}

/// The human rendering of one side's claims: the claims one value per
/// line, then a scoped user's effective permissions; the `expires` line
/// shows `expires` instead of what the claims hold, when given (see
/// [`action_sides`]).
fn side_with_expiry(c: &Claims, names: &(impl Names + ?Sized), expires: Option<String>) -> String {
    let mut claims = c.value();
    if let (Some(text), Value::Object(m)) = (expires, &mut claims) {
        // Where the wire puts `exp` (after `aud`, before the rest), so both
        // sides of a diff hold it on the same line.
        let mut with = serde_json::Map::with_capacity(m.len() + 1);
        let mut text = Some(json!(text));
        for (k, v) in std::mem::take(m) {
            if k == "exp" {
                continue;
            }
            if k != "aud" {
                if let Some(t) = text.take() {
                    with.insert("exp".into(), t);
                }
            }
            with.insert(k, v);
        }
        if let Some(t) = text {
            with.insert("exp".into(), t);
        }
        *m = with;
    }
    let mut text = render_claims::render(&claims, names);
    if let Some(e) = &c.effective {
        text.push_str(&effective_text(e, names));
    }
    text
}

/// How an action's `expires` reads when the new JWT has a relative expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expiry {
    /// `90d after each issue`.
    pub rule: String,
    /// The new JWT's expiry, if signed at the plan's `now`.
    pub next: Option<i64>,
    /// The stored JWT's expiry, when it has one.
    pub stored: Option<i64>,
    /// The stored JWT was issued under the same rule (its `exp` is its
    /// `iat` plus the same validity): a re-issue moves the date, and that
    /// is no change of the claims.
    pub same_rule: bool,
}

impl Expiry {
    /// The relative expiry of an action's new JWT, if it has one.
    pub(crate) fn of(a: &Action) -> Option<Expiry> {
        let after = a.after.as_ref()?;
        let valid_for = after.valid_for?;
        let before = a.before.as_ref();
        let exp = before.and_then(|c| c.value().get("exp")?.as_i64());
        let iat = before.and_then(|c| c.issued_at);
        Some(Expiry {
            rule: render_claims::rule(valid_for),
            next: after.expires_at,
            stored: exp.filter(|e| *e != 0),
            same_rule: matches!((exp, iat), (Some(e), Some(i)) if i.checked_add(valid_for) == Some(e)),
        })
    }

    /// The line the text and Markdown views print under the reasons when
    /// the rule stays the same: both dates, and that the rule is unchanged
    /// (the diff shows the rule, identical on both sides).
    pub(crate) fn same_rule_line(&self) -> Option<String> {
        if !self.same_rule {
            return None;
        }
        let stored = self.stored.map(render_claims::date).unwrap_or_default();
        Some(match self.next {
            Some(next) => format!(
                "{stored} → {} (rule unchanged: {})",
                render_claims::date(next),
                self.rule
            ),
            None => format!("{stored} (rule unchanged: {})", self.rule),
        })
    }
}

/// Both sides of an action as its diff compares them. A relative expiry
/// on the new JWT shows as its rule; when the stored JWT was issued under
/// the same rule, its side shows the rule too, so a re-issue does not
/// read as a change of `expires`. `dated` (the text and Markdown views)
/// also puts the new JWT's date beside a rule that changes
/// (`2027-05-24T10:00:00Z (90d after each issue)`); the JSON view leaves it
/// out, because that date depends on the clock and a saved plan must read
/// the same when `apply FILE` checks it later.
pub(crate) fn action_sides(
    a: &Action,
    names: &(impl Names + ?Sized),
    dated: bool,
) -> (String, String) {
    let expiry = Expiry::of(a);
    let before = a.before.as_ref().map(|c| {
        let same = expiry.as_ref().filter(|e| e.same_rule);
        side_with_expiry(c, names, same.map(|e| e.rule.clone()))
    });
    let after = a.after.as_ref().map(|c| {
        let text = expiry.as_ref().map(|e| match e.next {
            Some(next) if dated && !e.same_rule => {
                format!("{} ({})", render_claims::date(next), e.rule)
            }
            _ => e.rule.clone(),
        });
        side_with_expiry(c, names, text)
    });
    (before.unwrap_or_default(), after.unwrap_or_default())
}

/// Whether both sides of `a` are known to render the same without
/// rendering them: the same claims text and effective permissions, and no
/// relative expiry (which each side words its own way). A re-issue that
/// changes no claim (a rotated signer) is the common case.
pub(crate) fn sides_render_alike(a: &Action) -> bool {
    match (&a.before, &a.after) {
        (Some(b), Some(f)) => {
            f.valid_for.is_none()
                && b.valid_for.is_none()
                && b.json() == f.json()
                && b.effective == f.effective
        }
        _ => false,
    }
}

/// The effective-permissions block of a scoped user's rendering.
pub fn effective_text(e: &EffectivePermissions, names: &(impl Names + ?Sized)) -> String {
    let role = &e.role;
    let doc = json!({"effective_permissions": effective::block(role, &e.effective())});
    format!(
        "# as nats-server expands role `{role}` for this user:\n{}",
        render_claims::render(&doc, names)
    )
}

/// [`effective_text`] of an optional side: empty when there is none.
fn effective_side(e: Option<&EffectivePermissions>, names: &(impl Names + ?Sized)) -> String {
    e.map(|e| effective_text(e, names)).unwrap_or_default()
}

/// The vault part's headings and items, shared by the three views:
/// (heading, items) for the seeds to re-seal, then for the orphans.
pub(crate) fn vault_sections(plan: &super::Plan) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    if !plan.vault.reseal.is_empty() {
        out.push((
            "Seeds to re-seal to secrets.recipients (the keys stay the same):",
            plan.vault
                .reseal
                .iter()
                .map(|r| {
                    format!(
                        "{}{} ({}){}",
                        if r.bundle { "users' seeds of " } else { "" },
                        r.address,
                        super::short(&r.public_key),
                        if r.removes_recipient {
                            ", away from a recipient no longer listed"
                        } else {
                            ""
                        }
                    )
                })
                .collect(),
        ));
    }
    if !plan.vault.orphans.is_empty() {
        out.push((
            "Seed files of keys natsform no longer uses (apply removes them; git history keeps them):",
            plan.vault
                .orphans
                .iter()
                .map(|o| match &o.was {
                    Some(a) if o.bundle => format!("{} (users' seeds of {a})", o.file()),
                    Some(a) => format!("{} (of {a})", o.file()),
                    None => o.file(),
                })
                .collect(),
        ));
    }
    if !plan.vault.bundles.is_empty() {
        out.push((
            "Bundles of user seeds to rewrite (one age file per account; other accounts' stay as they are):",
            plan.vault.bundles.iter().map(bundle_line).collect(),
        ));
    }
    out
}

/// `account.O/A#main (ABCD…): 2 users added, 1 leaving, moved from WXYZ….users.age`.
fn bundle_line(b: &super::vault::BundleChange) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if !b.added.is_empty() {
        parts.push(plural(b.added.len(), "user added", "users added"));
    }
    if !b.removed.is_empty() {
        parts.push(format!(
            "{} leaving",
            plural(b.removed.len(), "user", "users")
        ));
    }
    if let Some(from) = &b.from {
        parts.push(format!(
            "moved from {}",
            super::vault::file_name(from, true)
        ));
    }
    if !b.legacy.is_empty() {
        parts.push(format!(
            "{} of its own moved in",
            plural(b.legacy.len(), "seed file", "seed files")
        ));
    }
    let key = match &b.public_key {
        Some(k) => super::short(k),
        None => "new key".to_string(),
    };
    format!("{} ({key}): {}", b.account, parts.join(", "))
}

/// ` N seeds to re-seal, M unused seed files to remove.` for summaries.
pub(crate) fn vault_summary(plan: &super::Plan) -> Option<String> {
    let mut parts = Vec::new();
    let n = plan.vault.reseal.len();
    if n > 0 {
        parts.push(format!(
            "{n} seed file{} to re-seal",
            if n == 1 { "" } else { "s" }
        ));
    }
    let n = plan.vault.orphans.len();
    if n > 0 {
        parts.push(format!(
            "{n} unused seed file{} to remove",
            if n == 1 { "" } else { "s" }
        ));
    }
    let n = plan.vault.bundles.len();
    if n > 0 {
        parts.push(format!(
            "{n} bundle{} of user seeds to rewrite",
            if n == 1 { "" } else { "s" }
        ));
    }
    (!parts.is_empty()).then(|| format!("{}.", parts.join(", ")))
}

#[cfg(test)]
mod expiry_tests {
    use super::*;
    use crate::plan::reasons::Reason;
    use crate::plan::ActionKind;
    use crate::tree::ObjectId;
    use std::collections::BTreeMap;

    const DAY: i64 = 86_400;
    /// 2027-01-15T08:00:00Z.
    const T0: i64 = 1_800_000_000;

    /// A re-issue at `now` of a user stored with `iat` T0 and `exp` (the
    /// canonical JSON has no `iat`: it travels beside it), whose
    /// manifest says `expires = "<valid_for>"`.
    fn reissue(exp: Option<i64>, valid_for: i64, now: i64) -> Action {
        let id = ObjectId::user("O", "A", "U");
        let stored = match exp {
            Some(e) => format!(r#"{{"exp":{e},"name":"U"}}"#),
            None => r#"{"name":"U"}"#.to_string(),
        };
        Action {
            address: id.address(),
            id,
            action: ActionKind::Reissue,
            reasons: vec![Reason::NotInStore],
            signer: None,
            before: Some(Claims::for_test(&stored, None, None, Some(T0))),
            after: Some(Claims::for_test(
                r#"{"name":"U"}"#,
                Some(valid_for),
                Some(now + valid_for),
                None,
            )),
        }
    }

    #[test]
    fn a_reissue_under_the_same_rule_changes_no_line_and_shows_both_dates() {
        let a = reissue(Some(T0 + 90 * DAY), 90 * DAY, T0 + 10 * DAY);
        let names = BTreeMap::<String, String>::new();
        for dated in [true, false] {
            let (before, after) = action_sides(&a, &names, dated);
            assert_eq!(before, after);
            assert_eq!(after, "expires: 90d after each issue\nname: U\n");
        }
        let e = Expiry::of(&a).unwrap();
        assert!(e.same_rule);
        assert_eq!(
            e.same_rule_line().unwrap(),
            "2027-04-15T08:00:00Z → 2027-04-25T08:00:00Z (rule unchanged: 90d after each issue)"
        );
    }

    #[test]
    fn a_changed_rule_shows_the_old_date_and_the_new_one_beside_its_rule() {
        let names = BTreeMap::<String, String>::new();
        // 90d → 30d.
        let a = reissue(Some(T0 + 90 * DAY), 30 * DAY, T0 + 10 * DAY);
        let (before, after) = action_sides(&a, &names, true);
        assert_eq!(before, "expires: 2027-04-15T08:00:00Z\nname: U\n");
        assert_eq!(
            after,
            "expires: 2027-02-24T08:00:00Z (30d after each issue)\nname: U\n"
        );
        // The JSON view: the rule, no date that depends on the clock.
        let (_, after) = action_sides(&a, &names, false);
        assert_eq!(after, "expires: 30d after each issue\nname: U\n");
        let e = Expiry::of(&a).unwrap();
        assert!(!e.same_rule && e.same_rule_line().is_none());
        // A fixed date that happens not to be 90d after the issue, and no
        // expiry at all: a change of rule too.
        for exp in [Some(T0 + 90 * DAY + 1), None] {
            let a = reissue(exp, 90 * DAY, T0 + 10 * DAY);
            let (before, after) = action_sides(&a, &names, true);
            assert_ne!(before, after);
            assert!(after.starts_with("expires: 2027-04-25T08:00:00Z (90d after each issue)\n"));
            assert!(Expiry::of(&a).unwrap().same_rule_line().is_none());
        }
    }

    /// The text view skips rendering a re-issue whose two sides are known
    /// to render alike; it must print what rendering both would print.
    #[test]
    fn sides_known_alike_print_what_rendering_them_prints() {
        let names = BTreeMap::<String, String>::new();
        let id = ObjectId::user("O", "A", "U");
        let claims = r#"{"name":"U","sub":"UABC","nats":{"tags":["team:a"]}}"#;
        let mut a = Action {
            address: id.address(),
            id,
            action: ActionKind::Reissue,
            reasons: vec![Reason::NotInStore],
            signer: None,
            before: Some(Claims::for_test(claims, None, None, Some(T0))),
            after: Some(Claims::for_test(claims, None, None, None)),
        };
        assert!(sides_render_alike(&a));
        let (before, after) = action_sides(&a, &names, true);
        assert_eq!(before, after, "alike indeed");
        let style = super::text::Style { color: false };
        let mut rendered = String::new();
        super::text::write_diff(&mut rendered, &before, &after, style);
        let mut skipped = String::new();
        super::text::write_diff(&mut skipped, "", "", style);
        assert_eq!(rendered, skipped);

        // Any difference, or a relative expiry, means rendering them.
        a.after = Some(Claims::for_test(
            r#"{"name":"V","sub":"UABC","nats":{"tags":["team:a"]}}"#,
            None,
            None,
            None,
        ));
        assert!(!sides_render_alike(&a));
        a.after = Some(Claims::for_test(claims, Some(DAY), Some(T0 + DAY), None));
        assert!(!sides_render_alike(&a));
        let (before, after) = action_sides(&a, &names, true);
        assert_ne!(before, after);
    }
}
