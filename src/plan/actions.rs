//! One action per object: what apply does to it and why, with the claims
//! before and after as data.

use serde_json::Value;

use super::desired::DesiredObject;
use super::effective::Effective;
use super::existing::{self, Existing};
use super::reasons::Reason;
use super::{effects, parent_address, revocations, Ctx};
use crate::tree::{ObjectId, ObjectKind};

/// What apply will do to one object.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Create,
    Update,
    Reissue,
    Replace,
    Delete,
}

impl ActionKind {
    /// The plan symbol, as Terraform users know them.
    pub fn symbol(self) -> &'static str {
        match self {
            ActionKind::Create => "+",
            ActionKind::Update => "~",
            ActionKind::Reissue => "↻",
            ActionKind::Replace => "-/+",
            ActionKind::Delete => "-",
        }
    }

    /// Verb phrase for headers: "will be created".
    pub fn phrase(self) -> &'static str {
        match self {
            ActionKind::Create => "will be created",
            ActionKind::Update => "will be updated",
            ActionKind::Reissue => "will be re-issued",
            ActionKind::Replace => "will be replaced (new identity key)",
            ActionKind::Delete => "will be deleted",
        }
    }

    /// Every kind, in the order summaries list them.
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Create,
        ActionKind::Update,
        ActionKind::Reissue,
        ActionKind::Replace,
        ActionKind::Delete,
    ];
}

/// One planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub id: ObjectId,
    pub address: String,
    pub action: ActionKind,
    /// Why, as data; `Display` words each reason.
    pub reasons: Vec<Reason>,
    /// The key that will sign the new JWT (address), if one is written.
    pub signer: Option<String>,
    /// The stored claims, when there is a trusted stored JWT.
    pub before: Option<Claims>,
    /// The claims apply will write, if it writes a JWT.
    pub after: Option<Claims>,
}

/// The claims of one side of a change. Kept as compact canonical JSON: as
/// `serde_json::Value`s the claims of 100,000 users would dominate the
/// plan's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Canonical claims JSON: stored ones as decoded (activation tokens
    /// normalised to what they grant), desired ones as apply will sign them
    /// (without `iat`, `jti`, `iss`; key placeholders for keys to generate).
    json: Box<str>,
    /// Seconds of validity after each issue, for desired claims with a
    /// relative `expires` (their `exp` is set when signed).
    pub valid_for: Option<i64>,
    /// With `valid_for`: when the JWT expires if signed at the plan's
    /// `now` (apply signs at the same `now` as the plan it computes).
    pub expires_at: Option<i64>,
    /// Stored claims: the JWT's `iat` (the canonical JSON leaves it out).
    pub issued_at: Option<i64>,
    /// A scoped user's effective permissions, with its role.
    pub effective: Option<EffectivePermissions>,
}

impl Claims {
    /// The claims as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The claims as compact JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Claims from their JSON text, for tests of the views.
    #[cfg(test)]
    pub(crate) fn for_test(
        json: &str,
        valid_for: Option<i64>,
        expires_at: Option<i64>,
        issued_at: Option<i64>,
    ) -> Self {
        Claims {
            json: json.into(),
            valid_for,
            expires_at,
            issued_at,
            effective: None,
        }
    }
}

/// The permissions nats-server gives a user of a scoped role: the role's
/// template expanded for the user. Kept compact (JSON text), like
/// [`Claims`]: a role change can touch tens of thousands of users.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePermissions {
    pub role: String,
    /// The expanded template, as compact JSON.
    permissions: Box<str>,
    /// Deny entries that could not expand: nats-server refuses the connection.
    pub refused: Vec<String>,
}

impl EffectivePermissions {
    pub(super) fn new((role, e): (String, Effective)) -> Self {
        EffectivePermissions {
            role,
            permissions: serde_json::to_string(&e.permissions)
                .expect("JSON values serialize")
                .into(),
            refused: e.refused,
        }
    }

    /// The expanded template as compact JSON text.
    pub fn json(&self) -> &str {
        &self.permissions
    }

    /// The expansion as [`Effective`].
    pub fn effective(&self) -> Effective {
        Effective {
            permissions: serde_json::from_str(&self.permissions).unwrap_or(Value::Null),
            refused: self.refused.clone(),
        }
    }
}

/// A user whose JWT stays as it is but whose effective permissions change,
/// because the scoped role that signed it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub id: ObjectId,
    pub address: String,
    pub reasons: Vec<Reason>,
    pub before: Option<EffectivePermissions>,
    pub after: Option<EffectivePermissions>,
}

impl Ctx<'_> {
    /// The action for `id`, given its desired object and stored JWT (the
    /// caller walks both maps at once rather than looking each id up).
    pub(super) fn object(
        &self,
        id: &ObjectId,
        want: Option<&DesiredObject>,
        have: Option<&Existing>,
    ) -> Option<Action> {
        let address = id.address();
        let action = |action, reasons: Vec<Reason>, before, after| {
            Some(Action {
                id: id.clone(),
                address: address.clone(),
                action,
                reasons,
                signer: want
                    .filter(|_| action != ActionKind::Delete)
                    .map(|w| w.signer.address.clone()),
                before,
                after,
            })
        };
        let (want, have) = match (want, have) {
            (None, None) => return None,
            (Some(w), None) => {
                let mut reasons = vec![Reason::NotInStore];
                reasons.extend(self.revoked_key_note(id, w));
                reasons.extend(self.revocation_reasons(id));
                return action(
                    ActionKind::Create,
                    reasons,
                    None,
                    Some(self.desired_claims(id, w)),
                );
            }
            (None, Some(h)) => {
                return action(
                    ActionKind::Delete,
                    vec![Reason::NotInManifest],
                    self.stored_claims(id, h),
                    None,
                );
            }
            (Some(w), Some(h)) => (w, h),
        };
        let decoded = match &have.decoded {
            Ok(d) => d,
            Err(e) => {
                return action(
                    ActionKind::Reissue,
                    vec![Reason::UntrustedJwt { error: e.clone() }],
                    None,
                    Some(self.desired_claims(id, want)),
                );
            }
        };
        if want.subject.public.as_deref() != Some(decoded.subject.as_str()) {
            let key = want.subject.address.clone();
            let reason = match &want.subject.public {
                None => Reason::NewIdentityKey { key },
                // The lock names no address for the stored key: nothing natsform
                // wrote explains the change, so a reviewer must be told.
                Some(new) if !self.names().contains_key(decoded.subject.as_str()) => {
                    Reason::LockEdited {
                        key,
                        bound: new.clone(),
                        stored: decoded.subject.clone(),
                    }
                }
                Some(_) => Reason::IdentityKeyNow { key },
            };
            // A key its account has revoked (a deleted user's, bound here by
            // a hand-edited lock) would make that user's old seed usable
            // again with the new JWT: a reviewer must see it.
            let mut reasons = vec![reason];
            reasons.extend(
                self.revoked_key_note(id, want)
                    .or_else(|| self.revoked_elsewhere_note(id, want)),
            );
            return action(
                ActionKind::Replace,
                reasons,
                self.stored_claims(id, have),
                Some(self.desired_claims(id, want)),
            );
        }
        let mut reasons = Vec::new();
        // Accounts were compared once already (comparing is not cheap for them).
        let claims_changed = match id.kind() {
            ObjectKind::Account => self.changed_accounts.contains(id),
            _ => !decoded.holds(want),
        };
        if claims_changed {
            reasons.push(Reason::ClaimsChanged);
            reasons.extend(self.revocation_reasons(id));
        }
        reasons.extend(self.issuer_reason(id, want, &decoded.issuer));
        reasons.extend(self.revoked_jwt_reason(id, decoded));
        if want.valid_for.is_some()
            && decoded.expires > 0
            && decoded.expires - self.inputs.now <= self.inputs.reissue_before
        {
            reasons.push(Reason::Expiring {
                expires: decoded.expires,
                now: self.inputs.now,
                window: self.inputs.reissue_before,
            });
        }
        if !reasons.is_empty() {
            let kind = if claims_changed {
                ActionKind::Update
            } else {
                ActionKind::Reissue
            };
            return action(
                kind,
                reasons,
                self.stored_claims(id, have),
                Some(self.desired_claims(id, want)),
            );
        }
        None
    }

    /// Why a JWT signed by `issuer` must be signed again, if it must.
    fn issuer_reason(&self, id: &ObjectId, want: &DesiredObject, issuer: &str) -> Option<Reason> {
        if want.signer.public.as_deref() == Some(issuer) {
            return None;
        }
        let signer = want.signer.address.clone();
        let trusted = want
            .trusted
            .iter()
            .any(|k| k.public.as_deref() == Some(issuer));
        let parent = parent_address(id);
        Some(match self.names().get(issuer) {
            Some(addr) if trusted => Reason::SignerRotated {
                old: addr.to_string(),
                signer,
            },
            Some(addr) if !self.inputs.required.contains_key(*addr) => Reason::IssuerKeyRemoved {
                old: addr.to_string(),
                signer,
            },
            Some(addr) => Reason::IssuerNotTrusted {
                old: addr.to_string(),
                parent,
                signer,
            },
            None => Reason::IssuerUnknown {
                issuer: issuer.to_string(),
                parent,
                signer,
            },
        })
    }

    /// A kept user whose stored JWT its account revokes is issued again
    /// after the revocation (as apply does for every re-issue), so the
    /// manifest's users always hold a JWT that works.
    fn revoked_jwt_reason(&self, id: &ObjectId, decoded: &existing::DecodedJwt) -> Option<Reason> {
        let revocations = &self.inputs.state.revocations;
        if id.user.is_none() || revocations.is_empty() {
            return None;
        }
        let account = id.account_id()?.address();
        let entries = revocations.get(&account)?;
        let at = [entries.get(&decoded.subject), entries.get("*")]
            .into_iter()
            .flatten()
            .copied()
            .max()?;
        (decoded.issued_at <= at).then_some(Reason::RevokedJwt {
            issued_at: decoded.issued_at,
            account,
            at,
        })
    }

    /// A user getting a key that another account revoked (a user deleted
    /// there): its old seed would work again under this account. Only for
    /// replaces, which are rare: it looks at every account.
    fn revoked_elsewhere_note(&self, id: &ObjectId, want: &DesiredObject) -> Option<Reason> {
        let public = want.subject.public.as_ref()?;
        let own = id.account_id();
        self.inputs
            .state
            .objects
            .iter()
            .filter(|(a, _)| a.kind() == ObjectKind::Account && Some(*a) != own.as_ref())
            .find_map(|(a, acc)| {
                // Only the key itself: another account's `*` is about its own users.
                let at = *acc.claims.revocations()?.get(public.as_str())?;
                Some(Reason::KeyRevokedElsewhere {
                    account: a.address(),
                    at,
                })
            })
    }

    /// Why an account's revocations change (deleted users, repairs).
    fn revocation_reasons(&self, id: &ObjectId) -> Vec<Reason> {
        self.inputs
            .state
            .revocation_reasons
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// A user created with a key its account has revoked: say what happens.
    fn revoked_key_note(&self, id: &ObjectId, want: &DesiredObject) -> Option<Reason> {
        let public = want.subject.public.as_ref()?;
        let account = self.inputs.state.objects.get(&id.account_id()?)?;
        let at = revocations::revoked_at(&account.claims, public)?;
        Some(Reason::KeyRevokedAt { at })
    }

    /// The claims apply will write for `want`, canonical, with the
    /// effective permissions of a scoped user.
    fn desired_claims(&self, id: &ObjectId, want: &DesiredObject) -> Claims {
        Claims {
            json: want.claims.canonical().into(),
            valid_for: want.valid_for,
            expires_at: want.valid_for.map(|v| self.inputs.now.saturating_add(v)),
            issued_at: None,
            effective: self
                .effective_desired(id, want)
                .map(EffectivePermissions::new),
        }
    }

    /// The stored claims of `have`, if it can be trusted.
    fn stored_claims(&self, id: &ObjectId, have: &Existing) -> Option<Claims> {
        let decoded = have.decoded.as_ref().ok()?;
        let json: Box<str> = match self.inputs.state.objects.get(id) {
            Some(want) if !want.activations.is_empty() => {
                let mut claims = decoded.value();
                existing::normalize_activations(&mut claims, &want.activations);
                serde_json::to_string(&claims)
                    .expect("claims serialize")
                    .into()
            }
            // Nothing to normalise: the canonical text itself (views read
            // it as JSON), neither parsed again nor kept in `decoded`.
            _ => decoded.canonical_text().into(),
        };
        let effective = match id.kind() {
            ObjectKind::User => self
                .effective_existing(id, decoded)
                .map(EffectivePermissions::new),
            _ => None,
        };
        Some(Claims {
            json,
            valid_for: None,
            expires_at: None,
            issued_at: Some(decoded.issued_at),
            effective,
        })
    }

    /// Effective permissions a desired scoped user will have, with its role.
    fn effective_desired(
        &self,
        id: &ObjectId,
        want: &DesiredObject,
    ) -> Option<(String, Effective)> {
        want.scoped_role.as_ref()?;
        let account_id = id.account_id()?;
        let account = self.inputs.state.objects.get(&account_id)?;
        let claims = self.accounts.get(&account_id)?.desired(account);
        effects::desired_effective(id, want, account, claims)
    }

    /// Effective permissions a stored user has under its stored account.
    fn effective_existing(
        &self,
        id: &ObjectId,
        decoded: &existing::DecodedJwt,
    ) -> Option<(String, Effective)> {
        let account_id = id.account_id()?;
        let account = self
            .inputs
            .existing
            .get(&account_id)?
            .decoded
            .as_ref()
            .ok()?;
        let claims = self.accounts.get(&account_id)?.stored(account);
        effects::stored_effective(decoded, account, claims)
    }
}
