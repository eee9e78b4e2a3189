//! The desired claims of every object, computed from the manifest and the
//! key bindings of the lock. Pure: no I/O, no clock, no randomness.
//!
//! Claims are built as the JSON NATS puts on the wire (nats-io/jwt v2 field
//! names and defaults), without `iat`, `jti` and `iss`, which signing adds.

use std::collections::BTreeMap;
use std::sync::Arc;

mod account;
pub mod activation;
mod common;
mod names;
mod operator;
mod user;
mod wiring;

#[cfg(test)]
mod tests;

use serde_json::Value;

use super::keyref::{KeyBook, KeyRef};
use crate::keys::KeyKind;
use crate::manifest::address;
use crate::manifest::model::{Account, Manifest, SigningKey};
use crate::tree::ObjectId;
use account::account_claims;
pub use activation::{activations_needed, ActivationNeed};
pub use common::normalize_tags;
use names::OperatorNames;
use operator::operator_claims;
use user::user_claims;

/// Wire claims kept as compact JSON text: as `serde_json::Value`s, the
/// claims of 100,000 users would dominate the planner's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireClaims(Box<str>);

impl WireClaims {
    pub fn new(v: &Value) -> Self {
        WireClaims(
            serde_json::to_string(v)
                .expect("JSON values serialize")
                .into(),
        )
    }

    /// The claims as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).expect("wire claims are JSON")
    }

    /// The claims as JSON text.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl DesiredObject {
    /// The wire claims as signed at `iat`: a relative expiry becomes `exp`.
    pub fn wire_at(&self, iat: i64) -> Value {
        let mut claims = self.claims.value();
        if let Some(v) = self.valid_for {
            claims["exp"] = Value::from(iat + v);
        }
        claims
    }
}

/// What one object should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub id: ObjectId,
    /// The claims as wire JSON, minus `iat`, `jti`, `iss`.
    pub claims: WireClaims,
    /// The object's identity key (its `sub`).
    pub subject: KeyRef,
    /// The key that must sign it.
    pub signer: KeyRef,
    /// Every key the parent trusts to sign it (the signer among them). A
    /// stored JWT signed by any other key is not trusted by its parent.
    /// Shared: every user of an account trusts the same keys.
    pub trusted: Arc<[KeyRef]>,
    /// For users of a scoped role: the role name.
    pub scoped_role: Option<String>,
    /// Seconds of validity after each issue (`expires = "90d"`): apply sets
    /// `exp = iat + valid_for`.
    pub valid_for: Option<i64>,
    /// For importing accounts: the activation tokens apply must issue.
    pub activations: Vec<super::keyref::ExpectedActivation>,
}

/// Every key the manifest needs: address → kind. Bring-your-own user keys
/// are included with their public key (they are never generated).
pub fn required_keys(manifest: &Manifest) -> BTreeMap<String, (KeyKind, Option<String>)> {
    let mut out = BTreeMap::new();
    for (op_name, op) in &manifest.operators {
        out.insert(
            address::key(&address::operator(op_name), &op.key),
            (KeyKind::Operator, None),
        );
        for label in &op.signing_keys {
            out.insert(
                address::key(&address::operator_signing_key(op_name), label),
                (KeyKind::Operator, None),
            );
        }
        for (acc_name, acc) in &op.accounts {
            out.insert(
                address::key(&address::account(op_name, acc_name), &acc.key),
                (KeyKind::Account, None),
            );
            for (role, sk) in &acc.signing_keys {
                for label in &sk.keys {
                    out.insert(
                        address::key(&address::signing_key(op_name, acc_name, role), label),
                        (KeyKind::Account, None),
                    );
                }
            }
            for (user_name, user) in &acc.users {
                out.insert(
                    address::key(&address::user(op_name, acc_name, user_name), &user.key),
                    (KeyKind::User, user.public_key.clone()),
                );
            }
        }
    }
    out
}

/// Computes the desired claims of every object in the manifest.
pub fn desired(manifest: &Manifest, keys: &KeyBook) -> BTreeMap<ObjectId, DesiredObject> {
    let required = required_keys(manifest);
    let key = |addr: String| {
        let (kind, byo) = required
            .get(&addr)
            .cloned()
            .unwrap_or((KeyKind::User, None));
        let public = byo.or_else(|| keys.get(&addr).cloned());
        KeyRef {
            address: addr,
            kind,
            public,
        }
    };
    let mut out = BTreeMap::new();
    for (op_name, op) in &manifest.operators {
        let op_key = key(address::key(&address::operator(op_name), &op.key));
        let op_signing: Vec<KeyRef> = op
            .signing_keys
            .iter()
            .map(|l| key(address::key(&address::operator_signing_key(op_name), l)))
            .collect();
        let account_key = |acc_name: &str, acc: &Account| {
            key(address::key(&address::account(op_name, acc_name), &acc.key))
        };
        let sys_key = op
            .system_account
            .as_ref()
            .and_then(|s| op.accounts.get(s).map(|a| account_key(s, a)));
        let id = ObjectId::operator(op_name);
        out.insert(
            id.clone(),
            DesiredObject {
                claims: WireClaims::new(&operator_claims(
                    op_name,
                    op,
                    &op_key,
                    &op_signing,
                    sys_key.as_ref(),
                )),
                subject: op_key.clone(),
                // The identity key signs the operator JWT, as nsc does.
                signer: op_key.clone(),
                trusted: std::iter::once(op_key.clone())
                    .chain(op_signing.iter().cloned())
                    .collect(),
                scoped_role: None,
                activations: Vec::new(),
                valid_for: op
                    .expires
                    .and_then(crate::manifest::units::Expiry::valid_for_secs),
                id,
            },
        );
        let account_signer = op_signing
            .first()
            .cloned()
            .unwrap_or_else(|| op_key.clone());
        // Under strict signing key usage servers drop the identity key from
        // the trusted set (nats-jwt-facts §3).
        let strict = op.strict_signing_key_usage;
        let account_trusted: Arc<[KeyRef]> = (!strict)
            .then(|| op_key.clone())
            .into_iter()
            .chain(op_signing.iter().cloned())
            .collect();
        let mut names = OperatorNames::default();
        for (acc_name, acc) in &op.accounts {
            names
                .accounts
                .insert(acc_name.clone(), account_key(acc_name, acc));
            for (user_name, user) in &acc.users {
                let user_key = key(address::key(
                    &address::user(op_name, acc_name, user_name),
                    &user.key,
                ));
                names
                    .users
                    .insert((acc_name.clone(), user_name.clone()), user_key);
            }
        }
        for (acc_name, acc) in &op.accounts {
            let acc_key = account_key(acc_name, acc);
            let roles: BTreeMap<&str, (Vec<KeyRef>, &SigningKey)> = acc
                .signing_keys
                .iter()
                .map(|(role, sk)| {
                    let refs = sk
                        .keys
                        .iter()
                        .map(|l| {
                            key(address::key(
                                &address::signing_key(op_name, acc_name, role),
                                l,
                            ))
                        })
                        .collect();
                    (role.as_str(), (refs, sk))
                })
                .collect();
            let id = ObjectId::account(op_name, acc_name);
            out.insert(
                id.clone(),
                DesiredObject {
                    claims: WireClaims::new(&account_claims(
                        acc_name, acc, &acc_key, &roles, op, &names,
                    )),
                    subject: acc_key.clone(),
                    signer: account_signer.clone(),
                    trusted: account_trusted.clone(),
                    scoped_role: None,
                    activations: Vec::new(),
                    valid_for: acc
                        .expires
                        .and_then(crate::manifest::units::Expiry::valid_for_secs),
                    id,
                },
            );
            let user_trusted: Arc<[KeyRef]> = (!strict)
                .then(|| acc_key.clone())
                .into_iter()
                .chain(roles.values().flat_map(|(refs, _)| refs.iter().cloned()))
                .collect();
            for (user_name, user) in &acc.users {
                let user_key = key(address::key(
                    &address::user(op_name, acc_name, user_name),
                    &user.key,
                ));
                let role = user
                    .signer
                    .as_deref()
                    .and_then(|r| roles.get(r).map(|(refs, sk)| (r, refs, *sk)));
                let (signer, scoped_role) = match role {
                    Some((r, refs, sk)) if !refs.is_empty() => {
                        (refs[0].clone(), sk.is_scoped().then(|| r.to_string()))
                    }
                    _ => (acc_key.clone(), None),
                };
                let issuer_account = (signer.address != acc_key.address).then(|| acc_key.value());
                let id = ObjectId::user(op_name, acc_name, user_name);
                out.insert(
                    id.clone(),
                    DesiredObject {
                        claims: WireClaims::new(&user_claims(
                            user_name,
                            user,
                            &user_key,
                            issuer_account,
                            scoped_role.is_some(),
                        )),
                        subject: user_key,
                        signer,
                        trusted: user_trusted.clone(),
                        scoped_role,
                        activations: Vec::new(),
                        valid_for: user
                            .expires
                            .and_then(crate::manifest::units::Expiry::valid_for_secs),
                        id,
                    },
                );
            }
        }
    }
    out
}
