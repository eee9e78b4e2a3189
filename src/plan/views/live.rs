//! What every view says about live servers ([`crate::live::LivePlan`]):
//! the counts, and one sentence per item. Each view escapes the pieces
//! that came from a server or the manifest (names, addresses, server
//! names) for its medium, through the `esc` it passes.

use serde_json::Value;

use crate::live::{LiveItem, LiveKind, LivePlan};
use crate::plan::render_claims::{self, Names};
use crate::plan::{short, ActionKind, Plan};

/// Distinct accounts apply pushes, deletes, and leaves alone (unmanaged,
/// without `--prune`; foreign, always), over every operator.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LiveCounts {
    pub push: usize,
    pub delete: usize,
    pub unmanaged: usize,
    /// Accounts another operator issued (or unreadable): never deleted.
    pub foreign: usize,
}

pub fn counts(plan: &Plan) -> LiveCounts {
    let mut c = LiveCounts::default();
    for lp in &plan.live {
        let mut push: Vec<&str> = lp.to_update().collect();
        push.sort_unstable();
        push.dedup();
        let mut delete: Vec<&str> = lp.to_delete(lp.prune).collect();
        delete.sort_unstable();
        delete.dedup();
        c.push += push.len();
        c.delete += delete.len();
        if !lp.prune {
            let mut left: Vec<&str> = lp
                .items
                .iter()
                .filter(|i| i.kind == LiveKind::Unmanaged)
                .map(|i| i.public.as_str())
                .collect();
            left.sort_unstable();
            left.dedup();
            c.unmanaged += left.len();
        }
        let mut foreign: Vec<&str> = lp
            .items
            .iter()
            .filter(|i| i.kind == LiveKind::Foreign)
            .map(|i| i.public.as_str())
            .collect();
        foreign.sort_unstable();
        foreign.dedup();
        c.foreign += foreign.len();
    }
    c
}

/// `Live: N to push, N to delete, N unmanaged (listed; --prune deletes
/// them)`; `None` without live data.
pub fn summary(plan: &Plan) -> Option<String> {
    if plan.live.is_empty() {
        return None;
    }
    let c = counts(plan);
    let mut s = format!(
        "Live: {} to push, {} to delete on servers",
        c.push, c.delete
    );
    if c.unmanaged > 0 {
        s.push_str(&format!(
            ", {} unmanaged (listed; --prune deletes them)",
            c.unmanaged
        ));
    }
    if c.foreign > 0 {
        s.push_str(&format!(
            ", {} held for other operators (listed; never deleted)",
            c.foreign
        ));
    }
    Some(s)
}

/// The symbol of an item, as actions have theirs.
pub fn symbol(item: &LiveItem, prune: bool) -> &'static str {
    match item.kind {
        LiveKind::Missing => "+",
        LiveKind::Older | LiveKind::Drifted => "~",
        LiveKind::Returned | LiveKind::Retired => "-",
        LiveKind::Unmanaged if prune => "-",
        LiveKind::Unmanaged | LiveKind::Foreign => "?",
    }
}

/// The action colour of an item (`None`: information).
pub fn colour(item: &LiveItem, prune: bool) -> Option<ActionKind> {
    match item.kind {
        LiveKind::Missing => Some(ActionKind::Create),
        LiveKind::Older | LiveKind::Drifted => Some(ActionKind::Update),
        LiveKind::Returned | LiveKind::Retired => Some(ActionKind::Delete),
        LiveKind::Unmanaged if prune => Some(ActionKind::Delete),
        LiveKind::Unmanaged | LiveKind::Foreign => None,
    }
}

/// How an item names its account: its address (with the key when the
/// manifest no longer has it), or the key and the name the server's JWT
/// gives it.
pub fn who(item: &LiveItem, esc: &dyn Fn(&str) -> String) -> String {
    match (&item.address, item.kind) {
        (Some(a), LiveKind::Returned | LiveKind::Retired) => {
            format!("{} ({})", esc(a), short(&item.public))
        }
        (Some(a), _) => esc(a),
        (None, _) => match &item.name {
            Some(n) => format!("account {} named \"{}\"", item.public, esc(n)),
            None => format!("account {}", item.public),
        },
    }
}

/// The server names of an item, joined.
pub fn servers(item: &LiveItem, esc: &dyn Fn(&str) -> String) -> String {
    item.servers
        .iter()
        .map(|s| esc(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sentence of one item: what the servers hold and what apply does.
pub fn sentence(item: &LiveItem, prune: bool, esc: &dyn Fn(&str) -> String) -> String {
    let who = who(item, esc);
    let on = servers(item, esc);
    match item.kind {
        LiveKind::Missing => format!("{who} is missing on {on}; apply pushes it"),
        LiveKind::Older => {
            format!("{who} is an older version on {on}; apply pushes the store's JWT")
        }
        LiveKind::Drifted => format!(
            "{who} was changed behind natsform's back on {on}; apply pushes the store's JWT"
        ),
        LiveKind::Returned => {
            format!("{who} came back on {on} after natsform deleted it; apply deletes it again")
        }
        LiveKind::Retired => format!(
            "{who} is the old key of an account this apply replaces, still on {on}; apply deletes it"
        ),
        LiveKind::Unmanaged if prune => {
            format!("{who} on {on} is not managed by this manifest; apply deletes it (--prune)")
        }
        LiveKind::Unmanaged => format!(
            "{who} on {on} is not managed by this manifest; listed only (--prune deletes it)"
        ),
        LiveKind::Foreign => match &item.issuer {
            Some(issuer) => format!(
                "{who} on {on} is held for another operator: signed by {}, a key this operator does not trust; listed only, never deleted (not even with --prune)",
                short(issuer)
            ),
            None => format!(
                "{who} on {on} is not an account JWT this operator issued (it does not verify); listed only, never deleted (not even with --prune)"
            ),
        },
    }
}

/// The note on an item whose account this plan changes anyway.
pub fn changed_here(plan: &Plan, item: &LiveItem) -> Option<&'static str> {
    let address = item.address.as_deref()?;
    let pushes = matches!(
        item.kind,
        LiveKind::Missing | LiveKind::Older | LiveKind::Drifted
    );
    (pushes
        && plan
            .actions
            .iter()
            .any(|a| a.address == address && a.action != ActionKind::Delete))
    .then_some("this plan changes the account too: apply pushes its new JWT, once")
}

/// The heading of one operator's servers.
pub fn heading(lp: &LivePlan, esc: &dyn Fn(&str) -> String) -> String {
    let n = lp.servers.len();
    let mut s = if n == 0 {
        format!(
            "Live servers of operator {}: none answered",
            esc(&lp.operator)
        )
    } else {
        format!(
            "Live servers of operator {}: {n} answered ({})",
            esc(&lp.operator),
            lp.servers
                .iter()
                .map(|s| esc(s))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if lp.items.is_empty() && n > 0 {
        s.push_str("; every one holds the store's accounts");
    }
    s
}

/// The note on entries a server listed under names that are not account
/// keys.
pub fn malformed(lp: &LivePlan) -> Option<String> {
    (lp.malformed > 0).then(|| {
        format!(
            "{} entr{} the servers listed under a name that is not an account public key: ignored",
            lp.malformed,
            if lp.malformed == 1 { "y" } else { "ies" }
        )
    })
}

/// The two sides of a drift as rendered claims: the server's, the store's.
pub fn drift_sides(item: &LiveItem, names: &(impl Names + ?Sized)) -> Option<(String, String)> {
    let d = item.drift.as_ref()?;
    let render = |json: &str| {
        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        render_claims::render(&v, names)
    };
    Some((
        d.live.as_deref().map(render).unwrap_or_default(),
        render(&d.store),
    ))
}

/// The items of `lp` in the order the views list them: by kind (pushes,
/// deletions, then what is only listed), each kind as the planner sorted.
pub fn in_order(lp: &LivePlan) -> impl Iterator<Item = &LiveItem> {
    LiveKind::SHOWN
        .into_iter()
        .flat_map(move |k| lp.items.iter().filter(move |i| i.kind == k))
}
