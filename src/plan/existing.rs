//! The store's JWTs as the planner sees them: decoded, verified, and
//! reduced to a canonical form shared with desired claims, so that the two
//! compare equal exactly when their meaning is equal.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::desired::{DesiredClaims, DesiredObject};
use super::keyref::{ExpectedActivation, ACTIVATION_PLACEHOLDER};
use crate::claims::{self, gojson, AccountClaims, Claims, OperatorClaims, UserClaims};
use crate::store::StoreContents;
use crate::tree::{ObjectId, ObjectKind};
use crate::verified::{self, Digest, Remembered};

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

    /// [`Self::payload`] as bytes, without checking that they are UTF-8
    /// (they were when decoded).
    fn payload_bytes(&self) -> Option<Vec<u8>> {
        let p = self.token.split('.').nth(1)?;
        data_encoding::BASE64URL_NOPAD.decode(p.as_bytes()).ok()
    }

    /// Canonical claims (see [`canonical`]), computed on first use: most
    /// stored JWTs match their desired payload byte for byte and never need it.
    pub fn canonical(&self) -> &str {
        self.canonical.get_or_init(|| self.compute_canonical())
    }

    /// [`Self::canonical`] as an owned string, without keeping it here when
    /// it was not computed yet: for claims a plan holds anyway (a user's
    /// stored side), so its text is not in memory twice.
    pub fn canonical_text(&self) -> String {
        match self.canonical.get() {
            Some(c) => c.clone(),
            None => self.compute_canonical(),
        }
    }

    fn compute_canonical(&self) -> String {
        let payload = self.payload();
        let parsed = match self.kind {
            ObjectKind::Operator => {
                serde_json::from_str::<OperatorClaims>(&payload).map(canonical_of)
            }
            ObjectKind::Account => {
                serde_json::from_str::<AccountClaims>(&payload).map(canonical_of)
            }
            ObjectKind::User => serde_json::from_str::<UserClaims>(&payload).map(canonical_of),
        };
        parsed.unwrap_or_else(|e| format!("{{\"invalid\":{}}}", Value::String(e.to_string())))
    }

    /// The payload's top-level `name` (empty unless a string) and the
    /// strings of its `nats.tags`, as signed, without a value of the
    /// whole payload (what a scoped user's template expands with).
    pub fn name_and_tags(&self) -> (String, Vec<String>) {
        super::desired::name_and_tags_in(&self.payload())
    }

    /// The canonical claims as JSON, for rendering and inspection.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.canonical()).expect("canonical claims are JSON")
    }

    /// The payload as JSON, as signed, without computing (and keeping) the
    /// canonical form: for reading a field or two of many users' JWTs.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(&self.payload()).unwrap_or(Value::Null)
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
            // The fast path: the bytes natsform would sign are the stored
            // ones. For a user, built from its encoding and compared but for
            // `jti` (a hash of the rest).
            if let DesiredClaims::User(user) = &want.claims {
                if let Some(masked) =
                    user.masked_payload(self.issued_at, want.valid_for, &self.issuer)
                {
                    debug_assert!(
                        want.claims
                            .payload_at(self.issued_at, want.valid_for, &self.issuer)
                            .is_some_and(|p| masked.matches(p.as_bytes())),
                        "the masked payload is the payload: {}",
                        masked.text
                    );
                    if self.payload_bytes().is_some_and(|p| masked.matches(&p)) {
                        return true;
                    }
                    return want.claims.canonical_at(self.issued_at, want.valid_for)
                        == self.canonical();
                }
            }
            let exact = want
                .claims
                .payload_at(self.issued_at, want.valid_for, &self.issuer);
            if exact.is_some_and(|e| e == self.payload()) {
                return true;
            }
            return want.claims.canonical_at(self.issued_at, want.valid_for) == self.canonical();
        }
        let mut mine = self.value();
        normalize_activations(&mut mine, &want.activations);
        want.claims.canonical_at(self.issued_at, want.valid_for) == canonical(self.kind, &mine)
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

/// Decodes and verifies every JWT of the store, in parallel.
pub fn decode_all(contents: StoreContents) -> BTreeMap<ObjectId, Existing> {
    decode_all_remembering(contents, &Remembered::default()).0
}

/// How the signatures of a store were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// JWTs read.
    pub jwts: usize,
    /// Ed25519 verifications done in this run.
    pub checked: usize,
    /// JWTs whose exact bytes an earlier run verified (not checked again).
    pub remembered: usize,
    /// The digest of every JWT that decoded and verified (now or before):
    /// what the cache holds after this run, sorted.
    pub digests: Vec<Digest>,
}

/// [`decode_all`], skipping only the Ed25519 check of JWTs whose exact
/// bytes `remembered` holds (see [`crate::verified`]): envelope, header,
/// claims and kind are checked on every JWT.
pub fn decode_all_remembering(
    contents: StoreContents,
    remembered: &Remembered,
) -> (BTreeMap<ObjectId, Existing>, Verification) {
    let decoded: Vec<(ObjectId, Decoded)> = contents
        .jwts
        .into_par_iter()
        .map(|(id, jwt)| {
            let d = decode_stored(&id, &jwt.token, remembered);
            (id, d)
        })
        .collect();
    tally(decoded)
}

/// A stored JWT as [`decode_all_remembering`] decodes it; [`tally`] puts
/// them together.
pub struct Decoded {
    existing: Existing,
    /// Its digest, when it decoded and verified.
    digest: Option<Digest>,
    /// Whether its signature was checked in this run.
    checked: bool,
}

/// Decodes the stored JWT `token` of `id`, skipping only the Ed25519
/// check of bytes `remembered` holds: for decoding while the store is read
/// ([`crate::store::Store::read_each`]).
pub fn decode_stored(id: &ObjectId, token: &str, remembered: &Remembered) -> Decoded {
    let token: Arc<str> = Arc::from(token);
    let digest = verified::digest(&token);
    let known = remembered.contains(&digest);
    let (decoded, checked) = match decode_checking(id.kind(), &token, known) {
        Ok((d, checked)) => (Ok(d), checked),
        // A JWT that fails is checked fully the next time too.
        Err(e) => (Err(e), !known),
    };
    Decoded {
        digest: decoded.is_ok().then_some(digest),
        existing: Existing { token, decoded },
        checked,
    }
}

/// The stored JWTs decoded by [`decode_stored`] (in [`ObjectId`] order)
/// as the planner reads them, and how their signatures were checked.
pub fn tally(decoded: Vec<(ObjectId, Decoded)>) -> (BTreeMap<ObjectId, Existing>, Verification) {
    let mut tally = Verification {
        jwts: decoded.len(),
        ..Verification::default()
    };
    let mut existing = Vec::with_capacity(decoded.len());
    for (id, d) in decoded {
        if d.checked {
            tally.checked += 1;
        } else {
            tally.remembered += 1;
        }
        tally.digests.extend(d.digest);
        existing.push((id, d.existing));
    }
    tally.digests.par_sort_unstable();
    tally.digests.dedup();
    // Sorted already: the map is built without a search per entry.
    (existing.into_iter().collect(), tally)
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
    decode_checking(kind, token, false).map(|(d, _)| d)
}

/// [`decode_one`]; with `signature_known_good`, the Ed25519 check is
/// skipped when the token is on the fast path. Also returns whether the
/// signature was checked.
fn decode_checking(
    kind: ObjectKind,
    token: &Arc<str>,
    signature_known_good: bool,
) -> Result<(DecodedJwt, bool), String> {
    let (env, checked) =
        claims::envelope_checking(token, signature_known_good).map_err(|e| e.to_string())?;
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
    let decoded = DecodedJwt {
        kind,
        subject: env.sub,
        issuer: env.iss,
        issued_at: env.iat,
        expires: env.exp,
        token: Arc::clone(token),
        canonical: OnceLock::new(),
    };
    Ok((decoded, checked))
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

/// Claims as JSON (stored claims with their activation tokens normalised)
/// in the canonical form: a round trip through the typed claims fixes
/// field order, defaults and omitted empty values exactly as nats-io/jwt
/// writes them.
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
        // The value came from typed claims; failing here is a bug. The plan
        // still shows a difference.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, KeyKind};
    use crate::store::StoredJwt;

    fn account_jwt() -> String {
        let op = generate(KeyKind::Operator);
        let acc = generate(KeyKind::Account);
        let mut c = AccountClaims::new(acc.public_key());
        c.data.name = "A".into();
        c.data.iat = 1_700_000_000;
        claims::encode(&mut c, &op).unwrap()
    }

    fn store(entries: &[(ObjectId, &str)]) -> StoreContents {
        let mut s = StoreContents::default();
        for (id, token) in entries {
            s.jwts.insert(
                id.clone(),
                StoredJwt {
                    path: "x.jwt".into(),
                    token: token.to_string(),
                },
            );
        }
        s
    }

    /// Same length, one signature character changed.
    fn bad_signature(token: &str) -> String {
        let i = token.rfind('.').unwrap() + 10;
        let mut t = token.to_string();
        let c = if &t[i..i + 1] == "A" { "B" } else { "A" };
        t.replace_range(i..i + 1, c);
        t
    }

    #[test]
    fn only_remembered_bytes_skip_the_signature_check() {
        let good = account_jwt();
        let other = account_jwt();
        let a = ObjectId::account("O", "A");
        let b = ObjectId::account("O", "B");
        let contents = || store(&[(a.clone(), &good), (b.clone(), &other)]);

        let (cold, v) = decode_all_remembering(contents(), &Remembered::default());
        assert_eq!((v.jwts, v.checked, v.remembered), (2, 2, 0));
        assert!(cold.values().all(|e| e.decoded.is_ok()));
        let mut both = vec![verified::digest(&good), verified::digest(&other)];
        both.sort_unstable();
        assert_eq!(v.digests, both);

        let remembered = Remembered::from_digests(vec![verified::digest(&good)]);
        let (warm, v) = decode_all_remembering(contents(), &remembered);
        assert_eq!((v.checked, v.remembered), (1, 1));
        assert_eq!(warm, cold, "the same result");
        assert_eq!(v.digests, both);

        // Tampered in place: the old bytes' digest does not vouch for it.
        let forged = bad_signature(&good);
        assert_eq!(forged.len(), good.len());
        let (e, v) = decode_all_remembering(store(&[(a.clone(), &forged)]), &remembered);
        assert_eq!((v.checked, v.remembered), (1, 0));
        assert!(e[&a].decoded.is_err());
        assert!(v.digests.is_empty(), "never remembered");

        // Remembered bytes still get every other check: an account JWT
        // where a user's should be is refused.
        let u = ObjectId::user("O", "A", "u");
        let (e, v) = decode_all_remembering(store(&[(u.clone(), &good)]), &remembered);
        assert_eq!(v.checked, 0);
        assert!(e[&u]
            .decoded
            .as_ref()
            .unwrap_err()
            .contains("expected user"));
        assert!(v.digests.is_empty());
    }

    #[test]
    fn canonical_text_is_the_canonical_form_and_keeps_nothing() {
        let token: Arc<str> = Arc::from(account_jwt());
        let d = decode_one(ObjectKind::Account, &token).unwrap();
        let text = d.canonical_text();
        assert!(d.canonical.get().is_none(), "not kept");
        assert_eq!(text, d.canonical());
        assert_eq!(d.canonical_text(), text, "and the same once kept");
        assert!(!text.contains("\"iat\"") && !text.contains("\"jti\""));
    }
}
