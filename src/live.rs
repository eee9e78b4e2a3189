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
    /// Whether apply deletes [`LiveKind::Unmanaged`] accounts (`--prune`;
    /// never [`LiveKind::Foreign`] ones).
    pub prune: bool,
    /// Entries a server listed under a name that is not an account public
    /// key: ignored (never pushed to, never deleted), counted here.
    pub malformed: usize,
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
    /// The `name` claim of the JWT the servers hold (unmanaged and
    /// returned accounts), as read: secrets redacted, at most
    /// [`MAX_NAME_CHARS`] characters; escaped by the views.
    pub name: Option<String>,
    /// For [`LiveKind::Drifted`]: why, and the claims for a diff.
    pub drift: Option<Box<Drift>>,
    /// For [`LiveKind::Foreign`]: the key that signed the server's JWT, a
    /// key this operator does not trust; `None` when the JWT does not
    /// verify as this key's account JWT.
    pub issuer: Option<String>,
}

/// Longest account name kept from a server's JWT.
pub const MAX_NAME_CHARS: usize = 200;

/// What a drifted account's diff needs: the claims the servers hold
/// against the store's, both in the canonical form of the plan (no `iat`,
/// `jti`, `iss`), with secrets redacted from the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Why this is not the store's JWT nor an older one natsform issued.
    pub reasons: Vec<DriftReason>,
    /// The server's claims as canonical JSON; `None` when its JWT does not
    /// decode as an account.
    pub live: Option<String>,
    /// The store's claims as canonical JSON (what apply pushes, unless this
    /// apply changes the account too).
    pub store: String,
}

/// Why a server's JWT of a managed account counts as drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftReason {
    /// Not a JWT whose signature verifies, or too large to read.
    Unreadable { error: String },
    /// A JWT of another kind (`user`, `operator`, …).
    NotAnAccount { found: String },
    /// An account JWT about another account key.
    OtherSubject { subject: String },
    /// Signed by a key this operator does not trust.
    UntrustedIssuer { issuer: String },
    /// The store's `jti` with other content.
    SameJtiOtherContent,
    /// Signed by a trusted key but not older than the store's JWT: issued
    /// behind natsform's back. A resolver's sync keeps the newer `iat`.
    NotOlder { live_iat: i64, store_iat: i64 },
}

impl DriftReason {
    /// The JSON name of the reason.
    pub fn kind(&self) -> &'static str {
        match self {
            DriftReason::Unreadable { .. } => "unreadable",
            DriftReason::NotAnAccount { .. } => "not-an-account",
            DriftReason::OtherSubject { .. } => "other-subject",
            DriftReason::UntrustedIssuer { .. } => "untrusted-issuer",
            DriftReason::SameJtiOtherContent => "same-jti-other-content",
            DriftReason::NotOlder { .. } => "not-older",
        }
    }
}

impl std::fmt::Display for DriftReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |k: &str| {
            if k.chars().count() > 12 {
                format!("{}…", k.chars().take(12).collect::<String>())
            } else {
                k.to_string()
            }
        };
        match self {
            DriftReason::Unreadable { error } => {
                write!(f, "the server's JWT cannot be read: {error}")
            }
            DriftReason::NotAnAccount { found } => write!(
                f,
                "the server holds {} JWT under this account's key, not an account JWT",
                if found.is_empty() { "an untyped".to_string() } else { format!("a `{found}`") }
            ),
            DriftReason::OtherSubject { subject } => write!(
                f,
                "the server's JWT is about another account ({})",
                short(subject)
            ),
            DriftReason::UntrustedIssuer { issuer } => write!(
                f,
                "the server's JWT is signed by {}, a key this operator does not trust (servers refuse it when they load the account)",
                short(issuer)
            ),
            DriftReason::SameJtiOtherContent => write!(
                f,
                "the server's JWT has the store's jti but other content"
            ),
            DriftReason::NotOlder { live_iat, store_iat } => write!(
                f,
                "signed by a key this operator trusts, issued at {}, not before the store's JWT (issued at {}): changed behind natsform's back; until the account is next issued, resolver sync prefers the server's newer JWT",
                crate::plan::render_claims::date(*live_iat),
                crate::plan::render_claims::date(*store_iat)
            ),
        }
    }
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
    /// An account this manifest never managed, issued by a key this
    /// operator trusts: listed; deleted only with `--prune`.
    Unmanaged,
    /// An account this manifest never managed whose server JWT was not
    /// issued by a key this operator trusts (a server can trust several
    /// operators: another operator's account), or does not verify: listed,
    /// never deleted, not even with `--prune` (a DELETE signed by this
    /// operator removes whatever account it names).
    Foreign,
    /// An account natsform deleted that came back (a full resolver does
    /// not replicate deletions): apply deletes it again.
    Returned,
    /// The old identity key of an account this apply replaces, still on
    /// these servers: apply deletes it (the lock records it as deleted).
    Retired,
}

impl LiveKind {
    /// The JSON name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            LiveKind::Missing => "missing",
            LiveKind::Older => "older",
            LiveKind::Drifted => "drifted",
            LiveKind::Unmanaged => "unmanaged",
            LiveKind::Foreign => "foreign",
            LiveKind::Returned => "returned",
            LiveKind::Retired => "retired",
        }
    }

    /// The order the views list kinds in: what apply pushes, what it
    /// deletes, then what it only lists.
    pub const SHOWN: [LiveKind; 7] = [
        LiveKind::Missing,
        LiveKind::Older,
        LiveKind::Drifted,
        LiveKind::Returned,
        LiveKind::Retired,
        LiveKind::Unmanaged,
        LiveKind::Foreign,
    ];
}

impl LivePlan {
    /// Whether apply has something to do on these servers: an account to
    /// push or to delete. Unmanaged accounts count only with `--prune`
    /// ([`LivePlan::prune`]); without it they are information.
    pub fn has_work(&self) -> bool {
        self.to_update().next().is_some() || self.to_delete(self.prune).next().is_some()
    }

    /// How many items of `kind`.
    pub fn count(&self, kind: LiveKind) -> usize {
        self.items.iter().filter(|i| i.kind == kind).count()
    }

    /// Public keys of the accounts apply must (re)send with UPDATE. An
    /// account can appear more than once (missing on one server, older on
    /// another): the push set is a map.
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

    /// Public keys of the accounts apply must remove with DELETE: never a
    /// [`LiveKind::Foreign`] one.
    pub fn to_delete(&self, prune: bool) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(move |i| {
                matches!(i.kind, LiveKind::Returned | LiveKind::Retired)
                    || (prune && i.kind == LiveKind::Unmanaged)
            })
            .map(|i| i.public.as_str())
    }
}
