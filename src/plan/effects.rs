//! Effective permissions: a scoped user's permissions come from its role's
//! template in the account JWT, so a role change changes what users can do
//! without touching their JWTs. The plan lists those users.

use std::collections::BTreeSet;

use serde_json::Value;

use super::actions::{Effect, EffectivePermissions};
use super::desired::DesiredObject;
use super::effective::{self, Effective};
use super::existing::DecodedJwt;
use super::reasons::Reason;
use super::Ctx;
use crate::tree::ObjectId;

impl Ctx<'_> {
    /// Users of `account_id` whose JWTs stay but whose effective permissions
    /// change (their role's template changed).
    pub(super) fn effects_of(
        &self,
        account_id: &ObjectId,
        acted: &BTreeSet<&ObjectId>,
    ) -> Vec<Effect> {
        let objects = &self.inputs.state.objects;
        let (Some(account), Some(stored)) = (
            objects.get(account_id),
            self.inputs.existing.get(account_id),
        ) else {
            return Vec::new();
        };
        let Ok(stored) = &stored.decoded else {
            return Vec::new();
        };
        let (desired_claims, stored_claims) = (account.claims.value(), stored.value());
        let mut out = Vec::new();
        let users = objects.range(account_id..).skip(1).take_while(|(id, _)| {
            id.user.is_some() && id.account_id().as_ref() == Some(account_id)
        });
        for (id, want) in users {
            let Some(role) = &want.scoped_role else {
                continue;
            };
            if acted.contains(id) {
                continue;
            }
            let Some(Ok(decoded)) = self.inputs.existing.get(id).map(|e| &e.decoded) else {
                continue;
            };
            let after = desired_effective(id, want, account, &desired_claims);
            let before = stored_effective(decoded, stored, &stored_claims);
            if after != before {
                out.push(Effect {
                    id: id.clone(),
                    address: id.address(),
                    reasons: vec![Reason::RoleChanged {
                        role: role.to_string(),
                        account: account_id.address(),
                    }],
                    before: before.map(EffectivePermissions::new),
                    after: after.map(EffectivePermissions::new),
                });
            }
        }
        out
    }
}

/// Effective permissions of a desired scoped user under desired account
/// claims `account_claims`.
pub(super) fn desired_effective(
    id: &ObjectId,
    want: &DesiredObject,
    account: &DesiredObject,
    account_claims: &Value,
) -> Option<(String, Effective)> {
    let role = want.scoped_role.as_ref()?;
    let (_, template) = effective::scope_of(account_claims, &want.signer.value())?;
    let ctx = effective::UserContext {
        name: id.name(),
        subject: &want.subject.value(),
        account_name: account.id.name(),
        account_subject: &account.subject.value(),
        user_tags: &want.claims.tags(),
        account_tags: &effective::tags_of(account_claims),
    };
    Some((role.to_string(), effective::expand(template, &ctx)))
}

/// Effective permissions of a stored user under its stored account.
pub(super) fn stored_effective(
    user: &DecodedJwt,
    account: &DecodedJwt,
    account_claims: &Value,
) -> Option<(String, Effective)> {
    let (role, template) = effective::scope_of(account_claims, &user.issuer)?;
    // Name and tags as signed: the canonical form of every user of a
    // changed account would stay cached (30 MiB for 100,000 users).
    let (name, tags) = user.name_and_tags();
    let ctx = effective::UserContext {
        name: &name,
        subject: &user.subject,
        account_name: account_claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        account_subject: &account.subject,
        user_tags: &tags,
        account_tags: &effective::tags_of(account_claims),
    };
    Some((role.to_string(), effective::expand(template, &ctx)))
}
