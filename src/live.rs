//! What live NATS servers hold, and what the plan says about it (issue 10).
//!
//! Shared contract between the network edge (`deploy`, which fills
//! [`LiveState`] from `$SYS.REQ.CLAIMS.LIST`/`LOOKUP` and executes a
//! [`PushSet`]) and the pure planner (which turns a [`LiveState`] into a
//! [`LivePlan`]). Data only: no I/O here.

use std::collections::BTreeMap;

/// What every server of one operator's resolver answered, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    /// The manifest name of the operator these servers trust.
    pub operator: String,
    /// One entry per server that answered, sorted by server name.
    pub servers: Vec<ServerHolding>,
}

/// The account JWTs one server holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHolding {
    /// The server's name (`server.name` of its replies; unique in a cluster).
    pub name: String,
    /// Account public key → the raw account JWT the server returned.
    pub accounts: BTreeMap<String, String>,
}

/// The accounts to send to the servers of one operator: what apply pushes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSet {
    pub operator: String,
    /// Account public key → the JWT to send with `$SYS.REQ.CLAIMS.UPDATE`.
    pub updates: BTreeMap<String, String>,
    /// Account public keys to remove with `$SYS.REQ.CLAIMS.DELETE`.
    pub deletes: Vec<String>,
}

impl PushSet {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.deletes.is_empty()
    }
}

/// What the plan says about the servers of one operator (`plan --live`,
/// and every apply that pushes). Built by the planner from a [`LiveState`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LivePlan {
    pub operator: String,
    /// The servers that answered, sorted.
    pub servers: Vec<String>,
    pub items: Vec<LiveItem>,
}

/// One account whose live state differs from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    /// The account's public key.
    pub public: String,
    /// The account's address (`account.O/A`) when the manifest or the
    /// lock's record of deleted accounts knows it.
    pub address: Option<String>,
    pub kind: LiveKind,
    /// The servers this item is about, sorted.
    pub servers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LiveKind {
    /// A managed account these servers lack: apply pushes it.
    Missing,
    /// These servers hold an older version natsform issued: apply pushes.
    Older,
    /// These servers hold a version natsform did not issue (changed
    /// behind its back): apply pushes the store's version.
    Drifted,
    /// An account this manifest never managed: listed; deleted only with
    /// `--prune`.
    Unmanaged,
    /// An account natsform deleted that came back (a full resolver does
    /// not replicate deletions): apply deletes it again.
    Returned,
}

impl LivePlan {
    /// Public keys of the accounts apply must (re)send with UPDATE.
    pub fn to_update(&self) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(|i| {
                matches!(
                    i.kind,
                    LiveKind::Missing | LiveKind::Older | LiveKind::Drifted
                )
            })
            .map(|i| i.public.as_str())
    }

    /// Public keys of the accounts apply must remove with DELETE.
    pub fn to_delete(&self, prune: bool) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(move |i| {
                i.kind == LiveKind::Returned || (prune && i.kind == LiveKind::Unmanaged)
            })
            .map(|i| i.public.as_str())
    }
}
