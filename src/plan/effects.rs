//! Effective permissions: a scoped user's permissions come from its role's
//! template in the account JWT, so a role change changes what users can do
//! without touching their JWTs. The plan lists those users.

use std::collections::BTreeSet;

use rayon::prelude::*;

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
        // What a template can refer to on the account's side, alike on
        // both sides: a user whose own inputs are alike too expands alike,
        // so nothing is expanded for it (a deletion changes only the
        // account's revocations, and 10,000 users keep their permissions).
        let account_alike = desired_claims.pointer("/nats/signing_keys")
            == stored_claims.pointer("/nats/signing_keys")
            && account.id.name()
                == stored_claims
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            && account.subject.value() == stored.subject
            && effective::tags_of(&desired_claims) == effective::tags_of(&stored_claims);
        let users: Vec<(&ObjectId, &DesiredObject)> = objects
            .range(account_id..)
            .skip(1)
            .take_while(|(id, _)| id.user.is_some() && id.account_id().as_ref() == Some(account_id))
            .collect();
        users
            .par_iter()
            .filter_map(|&(id, want)| {
                let role = want.scoped_role.as_ref()?;
                if acted.contains(id) {
                    return None;
                }
                let Some(Ok(decoded)) = self.inputs.existing.get(id).map(|e| &e.decoded) else {
                    return None;
                };
                if account_alike && user_alike(id, want, decoded) {
                    return None;
                }
                let after = desired_effective(id, want, account, &desired_claims);
                let before = stored_effective(decoded, stored, &stored_claims);
                (after != before).then(|| Effect {
                    id: id.clone(),
                    address: id.address(),
                    reasons: vec![Reason::RoleChanged {
                        role: role.to_string(),
                        account: account_id.address(),
                    }],
                    before: before.map(EffectivePermissions::new),
                    after: after.map(EffectivePermissions::new),
                })
            })
            .collect()
    }
}

/// Whether what a template can refer to on the user's side (the
/// signing key that picks the template, name, subject, tags) is the same
/// for the desired user and its stored JWT: what [`desired_effective`] and
/// [`stored_effective`] read of the user.
fn user_alike(id: &ObjectId, want: &DesiredObject, stored: &DecodedJwt) -> bool {
    if want.signer.public.as_deref() != Some(stored.issuer.as_str())
        || want.subject.public.as_deref() != Some(stored.subject.as_str())
    {
        return false;
    }
    let (name, tags) = stored.name_and_tags();
    name == id.name() && tags == want.claims.tags()
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
