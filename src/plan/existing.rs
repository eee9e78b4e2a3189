//! The store's JWTs as the planner sees them: decoded, verified, and
//! normalised the same way as desired claims so the two compare equal
//! exactly when their meaning is equal.

use std::collections::BTreeMap;

use serde_json::Value;

use super::keyref::NEW_KEY_PREFIX;
use crate::claims::{self, AccountClaims, AnyClaims, OperatorClaims, UserClaims};
use crate::store::StoreContents;
use crate::tree::{ObjectId, ObjectKind};

/// A JWT found in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub token: String,
    /// The decoded claims, or why they cannot be trusted.
    pub decoded: Result<DecodedJwt, String>,
}

/// What the planner needs of a verified stored JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJwt {
    /// Normalised payload (see [`normalize`]).
    pub payload: Value,
    pub subject: String,
    pub issuer: String,
    pub issued_at: i64,
}

/// Decodes and verifies every JWT of the store.
pub fn decode_all(contents: &StoreContents) -> BTreeMap<ObjectId, Existing> {
    contents
        .jwts
        .iter()
        .map(|(id, jwt)| {
            (
                id.clone(),
                Existing {
                    token: jwt.token.clone(),
                    decoded: decode_one(id.kind(), &jwt.token),
                },
            )
        })
        .collect()
}

fn decode_one(kind: ObjectKind, token: &str) -> Result<DecodedJwt, String> {
    let decoded = claims::decode(token).map_err(|e| e.to_string())?;
    let data = decoded.claims.data();
    let payload = match (kind, decoded.claims) {
        (ObjectKind::Operator, AnyClaims::Operator(c)) => to_value(&*c),
        (ObjectKind::Account, AnyClaims::Account(c)) => to_value(&*c),
        (ObjectKind::User, AnyClaims::User(c)) => to_value(&*c),
        (_, other) => {
            return Err(format!(
                "expected {} claims, found {} claims",
                kind_name(kind),
                other.claim_type()
            ));
        }
    };
    Ok(DecodedJwt {
        payload,
        subject: data.sub,
        issuer: data.iss,
        issued_at: data.iat,
    })
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Operator => "operator",
        ObjectKind::Account => "account",
        ObjectKind::User => "user",
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("claims serialize")
}

/// Round-trips wire JSON through the typed claims, so that field order,
/// defaults and omitted empty values are those of nats-io/jwt.
pub fn normalize(kind: ObjectKind, claims: &Value) -> Value {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Value {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => to_value(&t),
            Err(_) => v.clone(),
        }
    }
    match kind {
        ObjectKind::Operator => via::<OperatorClaims>(claims),
        ObjectKind::Account => via::<AccountClaims>(claims),
        ObjectKind::User => via::<UserClaims>(claims),
    }
}

/// Addresses of keys that `claims` refers to but that do not exist yet.
pub fn placeholders_in(claims: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(claims, &mut out);
    out
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(NEW_KEY_PREFIX) {
                out.push(rest.trim_end_matches(')').to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect(x, out)),
        _ => {}
    }
}
