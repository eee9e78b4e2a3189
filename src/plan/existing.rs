//! The store's JWTs as the planner sees them: decoded, verified, and
//! reduced to a canonical form shared with desired claims, so that the two
//! compare equal exactly when their meaning is equal.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::desired::DesiredObject;
use super::keyref::{ExpectedActivation, ACTIVATION_PLACEHOLDER, NEW_KEY_PREFIX};
use crate::claims::{self, gojson, AccountClaims, Claims, OperatorClaims, UserClaims};
use crate::store::StoreContents;
use crate::tree::{ObjectId, ObjectKind};

/// A JWT found in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub token: Arc<str>,
    /// The decoded claims, or why they cannot be trusted.
    pub decoded: Result<DecodedJwt, String>,
}

/// What the planner needs of a verified stored JWT.
#[derive(Debug, Clone)]
pub struct DecodedJwt {
    pub kind: ObjectKind,
    pub subject: String,
    pub issuer: String,
    pub issued_at: i64,
    /// Unix seconds; 0 when the JWT does not expire.
    pub expires: i64,
    /// The token, shared with [`Existing`]; the payload is decoded from it
    /// when needed rather than kept twice in memory.
    token: Arc<str>,
    canonical: OnceLock<String>,
}

impl PartialEq for DecodedJwt {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
    }
}

impl DecodedJwt {
    /// The token as stored (or as a server returned it).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The payload JSON exactly as signed (verified when decoded).
    pub fn payload(&self) -> String {
        payload_of(&self.token).unwrap_or_default()
    }

    /// Canonical claims (see [`canonical`]), computed on first use: most
    /// stored JWTs match their desired payload byte for byte and never need it.
    pub fn canonical(&self) -> &str {
        self.canonical.get_or_init(|| {
            let parsed = match self.kind {
                ObjectKind::Operator => {
                    serde_json::from_str::<OperatorClaims>(&self.payload()).map(canonical_of)
                }
                ObjectKind::Account => {
                    serde_json::from_str::<AccountClaims>(&self.payload()).map(canonical_of)
                }
                ObjectKind::User => {
                    serde_json::from_str::<UserClaims>(&self.payload()).map(canonical_of)
                }
            };
            parsed.unwrap_or_else(|e| format!("{{\"invalid\":{}}}", Value::String(e.to_string())))
        })
    }

    /// The canonical claims as JSON, for rendering and inspection.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.canonical()).expect("canonical claims are JSON")
    }

    /// Whether this JWT already holds exactly `wire` (desired claims) as
    /// natsform would sign them with this JWT's issuer and issue time, or
    /// at least the same meaning.
    ///
    /// Activation tokens natsform issues differ on every signing, so a
    /// stored token counts as equal when it grants exactly an `expected`
    /// activation, signed by the key that must sign it.
    pub fn holds(&self, want: &DesiredObject) -> bool {
        if want.activations.is_empty() {
            let exact = match self.kind {
                ObjectKind::Operator => payload_as::<claims::Operator>(want, self),
                ObjectKind::Account => payload_as::<claims::Account>(want, self),
                ObjectKind::User => payload_as::<claims::User>(want, self),
            };
            if exact.is_some_and(|e| e == self.payload()) {
                return true;
            }
            return canonical(self.kind, &want.wire_at(self.issued_at)) == self.canonical();
        }
        let mut mine = self.value();
        normalize_activations(&mut mine, &want.activations);
        canonical(self.kind, &want.wire_at(self.issued_at)) == canonical(self.kind, &mine)
    }
}

/// Replaces every stored activation token that grants exactly one of
/// `expected` by [`ACTIVATION_PLACEHOLDER`], as desired claims write it.
pub fn normalize_activations(account: &mut Value, expected: &[ExpectedActivation]) {
    let Some(Value::Array(imports)) = account.pointer_mut("/nats/imports") else {
        return;
    };
    for import in imports {
        let subject = import
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = import
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(Value::String(token)) = import.get_mut("token") else {
            continue;
        };
        let grants = expected
            .iter()
            .filter(|e| e.subject == subject && e.kind == kind)
            .any(|e| activation_grants(token, e));
        if grants {
            *token = ACTIVATION_PLACEHOLDER.to_string();
        }
    }
}

/// Whether `token` is a valid activation for `e`, signed by `e.signer`.
fn activation_grants(token: &str, e: &ExpectedActivation) -> bool {
    let Ok(claims::ActivationClaims { data, nats }) =
        claims::decode_as::<claims::Activation>(token)
    else {
        return false;
    };
    let issuer_account_ok = if Some(&data.iss) == e.exporter.public.as_ref() {
        nats.issuer_account.is_empty() || Some(&nats.issuer_account) == e.exporter.public.as_ref()
    } else {
        Some(&nats.issuer_account) == e.exporter.public.as_ref()
    };
    Some(&data.iss) == e.signer.public.as_ref()
        && Some(&data.sub) == e.importer.public.as_ref()
        && issuer_account_ok
        && nats.subject == e.subject
        && nats
            .kind
            .map(|k| serde_json::to_value(k).ok() == Some(Value::String(e.kind.clone())))
            .unwrap_or(false)
        && data.exp == 0
}

fn payload_as<N: claims::ClaimPayload>(
    want: &DesiredObject,
    stored: &DecodedJwt,
) -> Option<String> {
    let mut c: Claims<N> = serde_json::from_str(want.claims.text()).ok()?;
    if let Some(v) = want.valid_for {
        c.data.exp = stored.issued_at + v;
    }
    c.data.iat = stored.issued_at;
    claims::payload_for(&mut c, &stored.issuer).ok()
}

/// Decodes and verifies every JWT of the store, in parallel.
pub fn decode_all(contents: StoreContents) -> BTreeMap<ObjectId, Existing> {
    contents
        .jwts
        .into_par_iter()
        .map(|(id, jwt)| {
            let token: Arc<str> = Arc::from(jwt.token);
            let decoded = decode_one(id.kind(), &token);
            (id, Existing { token, decoded })
        })
        .collect()
}

/// Why a server's JWT is not a readable account JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveDecodeError {
    /// A verified JWT of another type (the type as found).
    Kind(String),
    /// Not a JWT whose signature verifies, or a payload that is not JSON.
    Invalid(String),
}

/// Decodes and verifies an account JWT a server returned (hostile input:
/// the caller bounds its size), as stored JWTs are.
pub fn decode_live(token: &str) -> Result<DecodedJwt, LiveDecodeError> {
    let token: Arc<str> = Arc::from(token);
    let env =
        claims::verify_envelope(&token).map_err(|e| LiveDecodeError::Invalid(e.to_string()))?;
    if env.claim_type != "account" {
        return Err(LiveDecodeError::Kind(env.claim_type));
    }
    decode_one(ObjectKind::Account, &token).map_err(LiveDecodeError::Invalid)
}

fn decode_one(kind: ObjectKind, token: &Arc<str>) -> Result<DecodedJwt, String> {
    let env = claims::verify_envelope(token).map_err(|e| e.to_string())?;
    if env.claim_type != kind_name(kind) {
        return Err(format!(
            "expected {} claims, found {} claims",
            kind_name(kind),
            env.claim_type
        ));
    }
    if payload_of(token).is_none() {
        return Err("the payload is not base64url JSON".into());
    }
    Ok(DecodedJwt {
        kind,
        subject: env.sub,
        issuer: env.iss,
        issued_at: env.iat,
        expires: env.exp,
        token: Arc::clone(token),
        canonical: OnceLock::new(),
    })
}

fn payload_of(token: &str) -> Option<String> {
    let p = token.split('.').nth(1)?;
    String::from_utf8(data_encoding::BASE64URL_NOPAD.decode(p.as_bytes()).ok()?).ok()
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
