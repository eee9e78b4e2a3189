//! The desired claims of every object, computed from the manifest and the
//! key bindings of the lock. Pure: no I/O, no clock, no randomness.
//!
//! Claims are built as the JSON NATS puts on the wire (nats-io/jwt v2 field
//! names and defaults), without `iat`, `jti` and `iss`, which signing adds.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::keyref::{KeyBook, KeyRef};
use crate::keys::KeyKind;
use crate::manifest::address;
use crate::manifest::model::{
    Account, Manifest, Operator, ResponsePermission, SigningKey, SubjectPermission, User,
};
use crate::tree::ObjectId;

/// What one object should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub id: ObjectId,
    /// The claims as wire JSON, minus `iat`, `jti`, `iss`.
    pub claims: Value,
    /// The object's identity key (its `sub`).
    pub subject: KeyRef,
    /// The key that must sign it.
    pub signer: KeyRef,
    /// For users of a scoped role: the role name.
    pub scoped_role: Option<String>,
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
                claims: operator_claims(op_name, op, &op_key, &op_signing, sys_key.as_ref()),
                subject: op_key.clone(),
                // The identity key signs the operator JWT, as nsc does.
                signer: op_key.clone(),
                scoped_role: None,
                id,
            },
        );
        let account_signer = op_signing
            .first()
            .cloned()
            .unwrap_or_else(|| op_key.clone());
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
                    claims: account_claims(acc_name, acc, &acc_key, &roles),
                    subject: acc_key.clone(),
                    signer: account_signer.clone(),
                    scoped_role: None,
                    id,
                },
            );
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
                        claims: user_claims(
                            user_name,
                            user,
                            &user_key,
                            issuer_account,
                            scoped_role.is_some(),
                        ),
                        subject: user_key,
                        signer,
                        scoped_role,
                        id,
                    },
                );
            }
        }
    }
    out
}

fn operator_claims(
    name: &str,
    op: &Operator,
    key: &KeyRef,
    signing: &[KeyRef],
    sys: Option<&KeyRef>,
) -> Value {
    let mut nats = Map::new();
    let mut sks: Vec<String> = signing.iter().map(KeyRef::value).collect();
    sks.sort();
    if !sks.is_empty() {
        nats.insert("signing_keys".into(), json!(sks));
    }
    if let Some(url) = &op.account_server_url {
        nats.insert("account_server_url".into(), json!(url));
    }
    if !op.service_urls.is_empty() {
        nats.insert("operator_service_urls".into(), json!(op.service_urls));
    }
    if let Some(sys) = sys {
        nats.insert("system_account".into(), json!(sys.value()));
    }
    if op.strict_signing_key_usage {
        nats.insert("strict_signing_key_usage".into(), json!(true));
    }
    finish(name, key, nats, "operator")
}

fn account_claims(
    name: &str,
    acc: &Account,
    key: &KeyRef,
    roles: &BTreeMap<&str, (Vec<KeyRef>, &SigningKey)>,
) -> Value {
    let mut nats = Map::new();
    nats.insert(
        "limits".into(),
        json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}),
    );
    let mut signing: Vec<(String, Value)> = Vec::new();
    for (role, (refs, sk)) in roles {
        for r in refs {
            let k = r.value();
            let entry = if sk.is_scoped() {
                let mut template =
                    permissions(sk.publish.as_ref(), sk.subscribe.as_ref(), sk.resp.as_ref());
                // A scope template's omitted limits mean unlimited (NewUserScope); say so explicitly.
                template.insert("subs".into(), json!(-1));
                template.insert("data".into(), json!(-1));
                template.insert("payload".into(), json!(-1));
                let mut scope = Map::new();
                scope.insert("kind".into(), json!("user_scope"));
                scope.insert("key".into(), json!(k));
                scope.insert("role".into(), json!(role));
                scope.insert("template".into(), Value::Object(template));
                if let Some(d) = &sk.description {
                    scope.insert("description".into(), json!(d));
                }
                Value::Object(scope)
            } else {
                json!(k)
            };
            signing.push((k, entry));
        }
    }
    signing.sort_by(|a, b| a.0.cmp(&b.0));
    if !signing.is_empty() {
        nats.insert(
            "signing_keys".into(),
            Value::Array(signing.into_iter().map(|(_, v)| v).collect()),
        );
    }
    nats.insert("default_permissions".into(), json!({"pub": {}, "sub": {}}));
    if !acc.tags.is_empty() {
        nats.insert("tags".into(), json!(normalize_tags(&acc.tags)));
    }
    finish(name, key, nats, "account")
}

fn user_claims(
    name: &str,
    user: &User,
    key: &KeyRef,
    issuer_account: Option<String>,
    scoped: bool,
) -> Value {
    let mut nats = if scoped {
        // A scoped user must carry no permissions or limits at all.
        let mut m = Map::new();
        m.insert("pub".into(), json!({}));
        m.insert("sub".into(), json!({}));
        m
    } else {
        let mut m = permissions(
            user.publish.as_ref(),
            user.subscribe.as_ref(),
            user.resp.as_ref(),
        );
        m.insert("subs".into(), json!(-1));
        m.insert("data".into(), json!(-1));
        m.insert("payload".into(), json!(-1));
        m
    };
    if let Some(acc) = issuer_account {
        nats.insert("issuer_account".into(), json!(acc));
    }
    if !user.tags.is_empty() {
        nats.insert("tags".into(), json!(normalize_tags(&user.tags)));
    }
    finish(name, key, nats, "user")
}

/// `pub`, `sub` (always present, as Go writes them) and `resp` (when set).
fn permissions(
    publish: Option<&SubjectPermission>,
    subscribe: Option<&SubjectPermission>,
    resp: Option<&ResponsePermission>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("pub".into(), subject_permission(publish));
    m.insert("sub".into(), subject_permission(subscribe));
    if let Some(r) = resp {
        m.insert(
            "resp".into(),
            json!({"max": r.max.unwrap_or(1), "ttl": r.ttl.map(|d| d.as_nanos()).unwrap_or(0)}),
        );
    }
    m
}

fn subject_permission(p: Option<&SubjectPermission>) -> Value {
    let mut m = Map::new();
    if let Some(p) = p {
        if !p.allow.is_empty() {
            m.insert("allow".into(), json!(p.allow));
        }
        if !p.deny.is_empty() {
            m.insert("deny".into(), json!(p.deny));
        }
    }
    Value::Object(m)
}

/// Tags as the Go library stores them: trimmed, lower-case, de-duplicated, sorted.
pub fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags.iter().map(|t| t.trim().to_lowercase()).collect();
    out.sort();
    out.dedup();
    out
}

fn finish(name: &str, key: &KeyRef, mut nats: Map<String, Value>, kind: &str) -> Value {
    nats.insert("type".into(), json!(kind));
    nats.insert("version".into(), json!(2));
    json!({"name": name, "sub": key.value(), "nats": Value::Object(nats)})
}
