//! Why the plan does what it does, as data: each reason, warning, lock
//! record and blocker is a variant carrying what it names (the key, the
//! role, the date, the user…). Views decide the words; [`Display`] gives
//! the sentence the text plan has always printed, which the other views
//! reuse.
//!
//! [`Display`]: std::fmt::Display

use std::fmt;

use super::render_claims::date;
use super::short;

/// Why one object is created, updated, re-issued, replaced or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The store holds no JWT for a desired object.
    NotInStore,
    /// The store holds a JWT for an object the manifest no longer names.
    NotInManifest,
    /// The stored JWT failed to decode or verify; `error` says why.
    UntrustedJwt { error: String },
    /// The object's identity key has no binding in the lock yet: apply
    /// generates `key` (a key address).
    NewIdentityKey { key: String },
    /// The lock binds `key` (address) to `bound` (public key), but the
    /// stored JWT's identity is `stored`, a key the lock does not name.
    LockEdited {
        key: String,
        bound: String,
        stored: String,
    },
    /// The identity key is now the one at address `key`.
    IdentityKeyNow { key: String },
    /// The stored claims differ from the desired ones.
    ClaimsChanged,
    /// Signed by `old` (address), which stays trusted; `signer` signs now.
    SignerRotated { old: String, signer: String },
    /// The issuer key `old` (address) left the manifest; `signer` signs now.
    IssuerKeyRemoved { old: String, signer: String },
    /// The issuer `old` (address) is no longer trusted by `parent`.
    IssuerNotTrusted {
        old: String,
        parent: String,
        signer: String,
    },
    /// The issuer (a public key) is no key of this manifest.
    IssuerUnknown {
        issuer: String,
        parent: String,
        signer: String,
    },
    /// A relative expiry: the JWT expires at `expires` (unix seconds),
    /// within `window` seconds of `now`, so it is re-issued.
    Expiring { expires: i64, now: i64, window: i64 },
    /// A user created with a key its account revoked at `at` (unix seconds).
    KeyRevokedAt { at: i64 },
    /// An account's revocation of `key` (public, or `*`) is restored from
    /// the lock; `hits` is a kept user it revokes (`*`: every user).
    RestoresRevocation { key: String, hits: Option<String> },
    /// A kept user's stored JWT (issued at `issued_at`) is revoked by its
    /// `account` (address) at `at`: it is issued again after that.
    RevokedJwt {
        issued_at: i64,
        account: String,
        at: i64,
    },
    /// The new identity key was revoked by another `account` (address) at
    /// `at`: whoever holds its seed could use the new JWT.
    KeyRevokedElsewhere { account: String, at: i64 },
    /// An account revokes the deleted user `user` (address).
    Revokes { user: String },
    /// An account revokes the old identity key of `user` (address), whose
    /// key is replaced.
    RevokesOldKey { user: String },
    /// A scoped user's effective permissions change: `role` changed in
    /// `account` (address).
    RoleChanged { role: String, account: String },
}

impl Reason {
    /// A stable machine-readable name for the variant (the JSON view's
    /// `reason_kinds`).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::NotInStore => "not-in-store",
            Reason::NotInManifest => "not-in-manifest",
            Reason::UntrustedJwt { .. } => "untrusted-jwt",
            Reason::NewIdentityKey { .. } => "new-identity-key",
            Reason::LockEdited { .. } => "lock-edited",
            Reason::IdentityKeyNow { .. } => "identity-key-changed",
            Reason::ClaimsChanged => "claims-changed",
            Reason::SignerRotated { .. } => "signer-rotated",
            Reason::IssuerKeyRemoved { .. } => "issuer-key-removed",
            Reason::IssuerNotTrusted { .. } => "issuer-not-trusted",
            Reason::IssuerUnknown { .. } => "issuer-unknown",
            Reason::Expiring { .. } => "expiring",
            Reason::KeyRevokedAt { .. } => "key-revoked",
            Reason::RestoresRevocation { .. } => "restores-revocation",
            Reason::RevokedJwt { .. } => "revoked-jwt",
            Reason::KeyRevokedElsewhere { .. } => "key-revoked-elsewhere",
            Reason::Revokes { .. } => "revokes-user",
            Reason::RevokesOldKey { .. } => "revokes-old-key",
            Reason::RoleChanged { .. } => "role-changed",
        }
    }
}

fn days(s: i64) -> String {
    format!("{}d", s.div_euclid(86_400))
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotInStore => f.write_str("not in the store"),
            Reason::NotInManifest => f.write_str("not in the manifest"),
            Reason::UntrustedJwt { error } => write!(
                f,
                "the stored JWT cannot be trusted ({error}); it will be signed again"
            ),
            Reason::NewIdentityKey { key } => write!(f, "identity key `{key}` is new"),
            Reason::LockEdited { key, bound, stored } => write!(
                f,
                "natsform.lock binds `{key}` to {bound}, but the stored JWT's identity is {stored}, a key the lock does not name (was the lock edited by hand?)"
            ),
            Reason::IdentityKeyNow { key } => write!(f, "identity key is now `{key}`"),
            Reason::ClaimsChanged => f.write_str("claims changed"),
            Reason::SignerRotated { old, signer } => write!(
                f,
                "signed by `{old}`, which stays trusted; `{signer}` signs now"
            ),
            Reason::IssuerKeyRemoved { old, signer } => {
                write!(f, "issuer key `{old}` removed; `{signer}` signs now")
            }
            Reason::IssuerNotTrusted {
                old,
                parent,
                signer,
            } => write!(
                f,
                "issuer `{old}` is not trusted by {parent}; `{signer}` signs now"
            ),
            Reason::IssuerUnknown {
                issuer,
                parent,
                signer,
            } => write!(
                f,
                "issuer {} is not a key of this manifest, so {parent} does not trust it; `{signer}` signs now",
                short(issuer)
            ),
            Reason::Expiring {
                expires,
                now,
                window,
            } => {
                if expires <= now {
                    write!(f, "expired {} ago", days(now - expires))
                } else {
                    write!(
                        f,
                        "expires in {} (re-issued within {} of expiry)",
                        days(expires - now),
                        days(*window)
                    )
                }
            }
            Reason::KeyRevokedAt { at } => write!(
                f,
                "its key was revoked at {}; older JWTs stay revoked and this one is issued after that",
                date(*at)
            ),
            Reason::RestoresRevocation { key, hits } => {
                write!(
                    f,
                    "restores the revocation of {key} recorded in natsform.lock (the stored account JWT lacks it: damaged, rolled back or removed)"
                )?;
                match hits {
                    Some(_) if key == "*" => f.write_str("; it revokes every user of the account issued before it, and the manifest's users are issued again after it"),
                    Some(user) => write!(f, "; it is the key of {user}, which the manifest keeps: that user is issued again after the revocation"),
                    None => Ok(()),
                }
            }
            Reason::RevokedJwt {
                issued_at,
                account,
                at,
            } => write!(
                f,
                "its stored JWT (issued at {}) is revoked by {account} at {}; it is issued again after the revocation",
                date(*issued_at),
                date(*at)
            ),
            Reason::KeyRevokedElsewhere { account, at } => write!(
                f,
                "its key was revoked by {account} at {}: whoever holds its seed can use this JWT",
                date(*at)
            ),
            Reason::Revokes { user } => write!(f, "revokes {user} (not in the manifest)"),
            Reason::RevokesOldKey { user } => write!(
                f,
                "revokes the old identity key of {user} (replaced: creds issued for it stop working)"
            ),
            Reason::RoleChanged { role, account } => {
                write!(f, "role `{role}` changed in {account}")
            }
        }
    }
}

/// Something a reviewer must know that apply cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// `address` has a fixed `expires` (unix seconds) inside the re-issue
    /// window: re-issuing cannot extend it.
    FixedExpiry {
        address: String,
        expires: i64,
        now: i64,
    },
    /// `seeds` seeds are sealed to a recipient `secrets.recipients` no
    /// longer lists: apply re-seals them, but git history keeps the old
    /// files.
    RecipientRemoved { seeds: usize },
}

impl Warning {
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::FixedExpiry { .. } => "fixed-expiry",
            Warning::RecipientRemoved { .. } => "recipient-removed",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::FixedExpiry {
                address,
                expires,
                now,
            } => {
                let when = if expires <= now {
                    format!("expired {}d ago", (now - expires) / 86_400)
                } else {
                    format!("expires in {}d", (expires - now) / 86_400)
                };
                write!(f, "{address}: {when}, on the fixed date its `expires` names ({}); re-issuing cannot extend it, so move the date later in the manifest", date(*expires))
            }
            Warning::RecipientRemoved { seeds } => write!(
                f,
                "{seeds} seed{s} {are} sealed to a recipient secrets.recipients no longer lists; apply re-seals {them} away from it, but git history still holds the old files, which that recipient can open: rotate the keys it could read (change each key's label in the manifest) to make those copies useless",
                s = if *seeds == 1 { "" } else { "s" },
                are = if *seeds == 1 { "is" } else { "are" },
                them = if *seeds == 1 { "it" } else { "them" },
            ),
        }
    }
}

/// A change to the revocation record in `natsform.lock` that no JWT action
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockRecord {
    /// The lock records the revocations of `account` (address) that its
    /// stored JWT holds; `new` of them are not recorded yet.
    Records { account: String, new: usize },
    /// The lock drops the record of `account`, which the manifest lacks.
    Drops { account: String },
}

impl LockRecord {
    pub fn kind(&self) -> &'static str {
        match self {
            LockRecord::Records { .. } => "records-revocations",
            LockRecord::Drops { .. } => "drops-revocations",
        }
    }
}

impl fmt::Display for LockRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockRecord::Records { account, new } => write!(
                f,
                "natsform.lock will record the revocations of {account} that its stored JWT holds ({new} not recorded yet)"
            ),
            LockRecord::Drops { account } => write!(
                f,
                "natsform.lock drops the revocation record of {account} (not in the manifest)"
            ),
        }
    }
}

/// A problem apply refuses to work around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The seed of `address` is missing or damaged, or its key is bound
    /// elsewhere too; `problem` says which and how to fix it.
    Seed { address: String, problem: String },
    /// Only the lock records a revocation of `key` by `account` (address),
    /// at `at`, a time still to come.
    FutureRevocation {
        account: String,
        key: String,
        at: i64,
    },
}

impl Blocker {
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::Seed { .. } => "seed",
            Blocker::FutureRevocation { .. } => "future-revocation",
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Seed { address, problem } => write!(f, "{address}: {problem}"),
            Blocker::FutureRevocation { account, key, at } => write!(
                f,
                "{account}: natsform.lock records a revocation of {key} at {}, which is in the future; natsform never records one\n    fix: restore natsform.lock from git (`git log -p -- natsform.lock` shows who added it); to revoke on purpose, use the account's `revocations` in the manifest",
                date(*at)
            ),
        }
    }
}
