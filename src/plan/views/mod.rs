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

use super::actions::{Claims, EffectivePermissions};
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
/// line, then a scoped user's effective permissions.
pub fn claims_text(c: &Claims, names: &(impl Names + ?Sized)) -> String {
    let mut claims = c.value();
    if let (Some(v), Value::Object(m)) = (c.valid_for, &mut claims) {
        let validity = crate::manifest::duration::Duration::from_nanos(v * 1_000_000_000);
        m.insert("exp".into(), json!(format!("{validity} after each issue")));
    }
    let mut text = render_claims::render(&claims, names);
    if let Some(e) = &c.effective {
        text.push_str(&effective_text(e, names));
    }
    text
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

/// [`claims_text`] of an optional side: empty when there is none.
fn side_text(c: Option<&Claims>, names: &(impl Names + ?Sized)) -> String {
    c.map(|c| claims_text(c, names)).unwrap_or_default()
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
