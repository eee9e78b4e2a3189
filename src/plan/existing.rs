//! The store's JWTs as the planner sees them: decoded, verified, and
//! reduced to a canonical form shared with desired claims, so that the two
//! compare equal exactly when their meaning is equal.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::keyref::NEW_KEY_PREFIX;
use crate::claims::{self, gojson, AccountClaims, AnyClaims, Claims, OperatorClaims, UserClaims};
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
    /// Canonical claims (see [`canonical`]).
    pub canonical: String,
    pub subject: String,
    pub issuer: String,
    pub issued_at: i64,
    /// Unix seconds; 0 when the JWT does not expire.
    pub expires: i64,
}

impl DecodedJwt {
    /// The canonical claims as JSON, for rendering and inspection.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.canonical).expect("canonical claims are JSON")
    }
}

/// Decodes and verifies every JWT of the store.
pub fn decode_all(contents: &StoreContents) -> BTreeMap<ObjectId, Existing> {
    contents
        .jwts
        .iter()
        .map(|(id, jwt)| {
            let decoded = decode_one(id.kind(), &jwt.token);
            (
                id.clone(),
                Existing {
                    token: jwt.token.clone(),
                    decoded,
                },
            )
        })
        .collect()
}

fn decode_one(kind: ObjectKind, token: &str) -> Result<DecodedJwt, String> {
    let decoded = claims::decode(token).map_err(|e| e.to_string())?;
    let data = decoded.claims.data();
    let canonical = match (kind, decoded.claims) {
        (ObjectKind::Operator, AnyClaims::Operator(c)) => canonical_of(*c),
        (ObjectKind::Account, AnyClaims::Account(c)) => canonical_of(*c),
        (ObjectKind::User, AnyClaims::User(c)) => canonical_of(*c),
        (_, other) => {
            return Err(format!(
                "expected {} claims, found {} claims",
                kind_name(kind),
                other.claim_type()
            ));
        }
    };
    Ok(DecodedJwt {
        canonical,
        subject: data.sub,
        issuer: data.iss,
        issued_at: data.iat,
        expires: data.exp,
    })
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Operator => "operator",
        ObjectKind::Account => "account",
        ObjectKind::User => "user",
    }
}

/// The Go JSON of claims without the fields that change on every signing
/// (`iat`, `jti`, `iss`) nor `type`/`version`, which encoding sets.
fn canonical_of<N: Serialize>(mut c: Claims<N>) -> String {
    c.data.iat = 0;
    c.data.jti.clear();
    c.data.iss.clear();
    gojson::to_string(&c)
}

/// Desired wire claims in the same canonical form as stored ones: a round
/// trip through the typed claims fixes field order, defaults and omitted
/// empty values exactly as nats-io/jwt writes them.
pub fn canonical(kind: ObjectKind, wire: &Value) -> String {
    match kind {
        ObjectKind::Operator => via_typed::<OperatorClaims>(wire),
        ObjectKind::Account => via_typed::<AccountClaims>(wire),
        ObjectKind::User => via_typed::<UserClaims>(wire),
    }
}

fn via_typed<T: DeserializeOwned + Into<Canonical>>(wire: &Value) -> String {
    match serde_json::from_value::<T>(wire.clone()) {
        Ok(t) => t.into().0,
        // Desired claims are built by natsform; failing here is a bug that
        // signing reports in full. The plan still shows a difference.
        Err(e) => format!("{{\"invalid\":{}}}", Value::String(e.to_string())),
    }
}

/// Canonical text of typed claims.
struct Canonical(String);

impl<N: Serialize> From<Claims<N>> for Canonical {
    fn from(c: Claims<N>) -> Self {
        Canonical(canonical_of(c))
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
