//! The desired claims of every object, computed from the manifest and the
//! key bindings of the lock. Pure: no I/O, no clock, no randomness.
//!
//! Claims are built as the typed claims of [`crate::claims`] (nats-io/jwt
//! v2 fields and defaults), without `iat`, `jti` and `iss`, which signing
//! adds: one encoding of the wire format, the one apply signs.

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

use super::keyref::{ExpectedActivation, KeyBook, KeyRef};
use crate::claims::{
    self, gojson, AccountClaims, ClaimPayload, Claims, OperatorClaims, UserClaims,
};
use crate::keys::KeyKind;
use crate::manifest::address;
use crate::manifest::model::{Account, Manifest, SigningKey, User};
use crate::tree::ObjectId;
use account::account_claims;
pub use activation::{activations_needed, ActivationNeed};
pub use common::normalize_tags;
use names::OperatorNames;
use operator::operator_claims;
use serde::Serialize;
use user::user_claims;

/// Desired claims, typed: the claims of `src/claims/` that apply signs,
/// minus `iat`, `jti` and `iss` (signing adds them) and, for a relative
/// expiry, `exp` (see [`DesiredObject::valid_for`]).
///
/// Two things apply has yet to make appear as typed placeholders beside
/// the claims, never as text to be found in them: a key without a public
/// key is a [`KeyRef`] whose `public` is `None` (the object's `subject`,
/// `signer` and [`DesiredObject::new_keys`]), and an activation token is an
/// [`ExpectedActivation`] naming its import. The claims hold, in those
/// places, what a plan shows and compares: `(new key ADDRESS)` and
/// [`super::keyref::ACTIVATION_PLACEHOLDER`].
#[derive(Debug, Clone, PartialEq)]
pub enum DesiredClaims {
    Operator(Box<OperatorClaims>),
    Account(Box<AccountClaims>),
    User(CompactUser),
}

/// A user's typed claims, kept as their canonical encoding (the Go JSON the
/// typed claims write, without `iat`, `jti`, `iss`) and read back by the
/// same typed claims when needed: users are many (100,000 in the
/// benchmark), and their claims as structs take about three times the
/// memory (measured: +60 MiB of peak for the benchmark's plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactUser(Box<str>);

impl CompactUser {
    pub fn new(claims: &UserClaims) -> Self {
        let compact = CompactUser(gojson::to_string(claims).into());
        debug_assert_eq!(&compact.claims(), claims, "user claims round trip");
        compact
    }

    /// The typed claims.
    pub fn claims(&self) -> UserClaims {
        serde_json::from_str(&self.0).expect("user claims read back what they wrote")
    }

    /// The canonical encoding.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// The user's tags (`nats.tags`), read without building the claims.
    pub fn tags(&self) -> Vec<String> {
        tags_in(&self.0)
    }
}

/// `nats.tags` of claims JSON, as [`super::effective::tags_of`] reads them
/// from its value, without building the whole value.
pub(crate) fn tags_in(json: &str) -> Vec<String> {
    name_and_tags_in(json).1
}

/// The top-level `name` (empty unless a string) and `nats.tags` (its
/// strings) of claims JSON, as a `Value` of the whole claims reads them
/// (`effective::tags_of`), without building that value.
pub(crate) fn name_and_tags_in(json: &str) -> (String, Vec<String>) {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    /// The fields of a JSON object, the last of equal keys winning (as in
    /// a value); anything but an object is an error.
    struct Fields<const NATS: bool> {
        name: Option<Value>,
        tags: Option<Value>,
    }
    impl<'de, const NATS: bool> serde::Deserialize<'de> for Fields<NATS> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(FieldsVisitor::<NATS>)
        }
    }
    struct FieldsVisitor<const NATS: bool>;
    impl<'de, const NATS: bool> Visitor<'de> for FieldsVisitor<NATS> {
        type Value = Fields<NATS>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Fields {
                name: None,
                tags: None,
            };
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    // The claims: `name`, and `tags` inside `nats`.
                    "name" if !NATS => out.name = Some(map.next_value()?),
                    "nats" if !NATS => out.tags = map.next_value::<Fields<true>>()?.tags,
                    "tags" if NATS => out.tags = Some(map.next_value()?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }
    let (name, tags) = match serde_json::from_str::<Fields<false>>(json) {
        Ok(f) => (f.name, f.tags),
        // Not an object, `nats` not an object, not JSON: what the value
        // of the whole claims says.
        Err(_) => {
            let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            (v.get("name").cloned(), v.pointer("/nats/tags").cloned())
        }
    };
    let name = name.as_ref().and_then(Value::as_str).unwrap_or_default();
    let tags = match tags {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    (name.to_string(), tags)
}

impl DesiredClaims {
    /// The claims as Go writes them (the canonical form the planner
    /// compares and shows): compact JSON, without `iat`, `jti`, `iss`.
    pub fn canonical(&self) -> String {
        match self {
            DesiredClaims::Operator(c) => gojson::to_string(c),
            DesiredClaims::Account(c) => gojson::to_string(c),
            DesiredClaims::User(c) => c.canonical().to_string(),
        }
    }

    /// [`Self::canonical`] as signed at `iat`: a relative expiry (`valid_for`
    /// seconds) becomes `exp`.
    pub fn canonical_at(&self, iat: i64, valid_for: Option<i64>) -> String {
        let Some(v) = valid_for else {
            return self.canonical();
        };
        match self {
            DesiredClaims::Operator(c) => with_exp(c, iat + v),
            DesiredClaims::Account(c) => with_exp(c, iat + v),
            DesiredClaims::User(c) => with_exp(&c.claims(), iat + v),
        }
    }

    /// The tags (`nats.tags`) of the claims.
    pub fn tags(&self) -> Vec<String> {
        match self {
            DesiredClaims::User(c) => c.tags(),
            _ => super::effective::tags_of(&self.value()),
        }
    }

    /// The canonical claims as a JSON value.
    pub fn value(&self) -> Value {
        let parsed = match self {
            DesiredClaims::User(c) => serde_json::from_str(c.canonical()),
            _ => serde_json::from_str(&self.canonical()),
        };
        parsed.expect("claims serialize as JSON")
    }

    /// A fixed expiry (unix seconds), 0 when none.
    pub fn exp(&self) -> i64 {
        match self {
            DesiredClaims::Operator(c) => c.data.exp,
            DesiredClaims::Account(c) => c.data.exp,
            DesiredClaims::User(c) => c.claims().data.exp,
        }
    }

    /// The account claims, for an account.
    pub fn account(&self) -> Option<&AccountClaims> {
        match self {
            DesiredClaims::Account(c) => Some(c),
            _ => None,
        }
    }

    /// The account claims, for an account, to change.
    pub fn account_mut(&mut self) -> Option<&mut AccountClaims> {
        match self {
            DesiredClaims::Account(c) => Some(c),
            _ => None,
        }
    }

    /// An account's revocations (public key or `*` → unix seconds).
    pub fn revocations(&self) -> Option<&BTreeMap<String, i64>> {
        self.account().map(|a| &a.nats.revocations)
    }

    /// The payload [`claims::encode`] would sign for these claims issued by
    /// `issuer` at `iat` (a relative expiry counted from `iat`): compared
    /// byte for byte with a stored JWT's payload. `None` when the claims
    /// cannot be encoded.
    pub fn payload_at(&self, iat: i64, valid_for: Option<i64>, issuer: &str) -> Option<String> {
        fn payload<N: ClaimPayload>(
            mut c: Claims<N>,
            iat: i64,
            valid_for: Option<i64>,
            issuer: &str,
        ) -> Option<String> {
            if let Some(v) = valid_for {
                c.data.exp = iat + v;
            }
            c.data.iat = iat;
            claims::payload_for(&mut c, issuer).ok()
        }
        match self {
            DesiredClaims::Operator(c) => payload((**c).clone(), iat, valid_for, issuer),
            DesiredClaims::Account(c) => payload((**c).clone(), iat, valid_for, issuer),
            DesiredClaims::User(c) => payload(c.claims(), iat, valid_for, issuer),
        }
    }
}

/// A user's payload as [`DesiredClaims::payload_at`] writes it, except
/// that its `jti` is [`JTI_LEN`] placeholder characters at `jti`: what a
/// stored payload is compared with outside that range (its `jti` is a hash
/// of the rest, and the comparison that decides ignores it anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedPayload {
    pub text: String,
    pub jti: std::ops::Range<usize>,
}

/// The length of a `jti`: 32 bytes in unpadded base32.
pub const JTI_LEN: usize = 52;

impl MaskedPayload {
    /// Whether `stored` (a payload as signed) is this payload with some
    /// `jti` of base32 characters: the same JSON, byte for byte, but for
    /// the value of `jti`.
    pub fn matches(&self, stored: &[u8]) -> bool {
        let t = self.text.as_bytes();
        let r = &self.jti;
        stored.len() == t.len()
            && stored[..r.start] == t[..r.start]
            && stored[r.end..] == t[r.end..]
            && stored[r.clone()]
                .iter()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(b))
    }
}

impl CompactUser {
    /// [`DesiredClaims::payload_at`] for this user, masked
    /// ([`MaskedPayload`]), built from the canonical encoding without
    /// reading the claims back: the standard claims Go writes before
    /// `name` (`exp` of a relative expiry, `jti`, `iat`, `iss`) go in
    /// front of the rest, which ends with `type` and `version` already.
    /// `None` when the encoding starts with a field Go writes before those
    /// (`aud`, a fixed `exp`) or is not shaped as expected: the caller then
    /// encodes the claims.
    pub fn masked_payload(
        &self,
        iat: i64,
        valid_for: Option<i64>,
        issuer: &str,
    ) -> Option<MaskedPayload> {
        use std::fmt::Write;
        const END: &str = ",\"type\":\"user\",\"version\":2}}";
        let c = &*self.0;
        let rest = c.strip_prefix('{')?;
        let body = rest.strip_suffix(END)?;
        if rest.starts_with("\"aud\"") || rest.starts_with("\"exp\"") {
            return None;
        }
        // Fields it sets must not be there already (not even as text in a
        // value: such a user is simply encoded).
        if [
            "\"jti\":",
            "\"iat\":",
            "\"iss\":",
            "\"type\":",
            "\"version\":",
        ]
        .iter()
        .any(|f| body.contains(f))
        {
            return None;
        }
        // Go omits a zero `iat` or `exp`; the issuer, a public key, has
        // nothing to escape.
        let exp = valid_for.map(|v| iat + v);
        if iat == 0
            || exp == Some(0)
            || issuer.is_empty()
            || !issuer.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let mut text = String::with_capacity(c.len() + 160);
        text.push('{');
        if let Some(exp) = exp {
            write!(text, "\"exp\":{exp},").ok()?;
        }
        text.push_str("\"jti\":\"");
        let start = text.len();
        text.extend(std::iter::repeat_n('A', JTI_LEN));
        let end = text.len();
        write!(text, "\",\"iat\":{iat},\"iss\":\"{issuer}\",").ok()?;
        text.push_str(rest);
        Some(MaskedPayload {
            text,
            jti: start..end,
        })
    }
}

fn with_exp<N: Serialize + Clone>(c: &Claims<N>, exp: i64) -> String {
    let mut c = c.clone();
    c.data.exp = exp;
    gojson::to_string(&c)
}

/// What one object should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub id: ObjectId,
    /// The claims, typed, minus `iat`, `jti`, `iss`.
    pub claims: DesiredClaims,
    /// The object's identity key (its `sub`).
    pub subject: KeyRef,
    /// The key that must sign it.
    /// Shared: every user a role signs has the same signer.
    pub signer: Arc<KeyRef>,
    /// Every key the parent trusts to sign it (the signer among them). A
    /// stored JWT signed by any other key is not trusted by its parent.
    /// Shared: every user of an account trusts the same keys.
    pub trusted: Arc<[KeyRef]>,
    /// For users of a scoped role: the role name (shared by its users).
    pub scoped_role: Option<Arc<str>>,
    /// Seconds of validity after each issue (`expires = "90d"`): apply sets
    /// `exp = iat + valid_for`.
    pub valid_for: Option<i64>,
    /// For importing accounts: the activation tokens apply must issue, each
    /// naming the import it goes in.
    pub activations: Vec<ExpectedActivation>,
    /// Keys the claims list besides `subject` and `signer` (an operator's
    /// or an account's signing keys) that have no public key yet: apply
    /// generates them. (Keys named through manifest names are other
    /// objects' subjects.)
    pub new_keys: Vec<String>,
}

/// The addresses of `keys` that have no public key yet.
fn unbound(keys: &[KeyRef]) -> Vec<String> {
    keys.iter()
        .filter(|k| k.public.is_none())
        .map(|k| k.address.clone())
        .collect()
}

/// Every key the manifest needs: address → kind, and the public key of a
/// bring-your-own user key.
pub type RequiredKeys = BTreeMap<String, (KeyKind, Option<String>)>;

/// Every key the manifest needs: address → kind. Bring-your-own user keys
/// are included with their public key (they are never generated).
pub fn required_keys(manifest: &Manifest) -> RequiredKeys {
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
    // Each key's kind is known where it is named, and only users bring
    // their own keys: no map of every key (100,000 users) is built here.
    let key = |address: String, kind: KeyKind, byo: Option<&String>| {
        let public = byo.or_else(|| keys.get(&address)).cloned();
        KeyRef {
            address,
            kind,
            public,
        }
    };
    let user_key = |op_name: &str, acc_name: &str, user_name: &str, user: &User| {
        key(
            address::key(&address::user(op_name, acc_name, user_name), &user.key),
            KeyKind::User,
            user.public_key.as_ref(),
        )
    };
    let mut out = BTreeMap::new();
    for (op_name, op) in &manifest.operators {
        let op_key = key(
            address::key(&address::operator(op_name), &op.key),
            KeyKind::Operator,
            None,
        );
        let op_signing: Vec<KeyRef> = op
            .signing_keys
            .iter()
            .map(|l| {
                key(
                    address::key(&address::operator_signing_key(op_name), l),
                    KeyKind::Operator,
                    None,
                )
            })
            .collect();
        let account_key = |acc_name: &str, acc: &Account| {
            key(
                address::key(&address::account(op_name, acc_name), &acc.key),
                KeyKind::Account,
                None,
            )
        };
        let sys_key = op
            .system_account
            .as_ref()
            .and_then(|s| op.accounts.get(s).map(|a| account_key(s, a)));
        let id = ObjectId::operator(op_name);
        out.insert(
            id.clone(),
            DesiredObject {
                claims: DesiredClaims::Operator(Box::new(operator_claims(
                    op_name,
                    op,
                    &op_key,
                    &op_signing,
                    sys_key.as_ref(),
                ))),
                new_keys: unbound(&op_signing),
                subject: op_key.clone(),
                // The identity key signs the operator JWT, as nsc does.
                signer: Arc::new(op_key.clone()),
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
        let account_signer = Arc::new(
            op_signing
                .first()
                .cloned()
                .unwrap_or_else(|| op_key.clone()),
        );
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
            // Users are named only by auth callout (`auth_users`).
            let named = acc.authorization.iter().flat_map(|a| &a.auth_users);
            for (user_name, user) in named.filter_map(|n| acc.users.get_key_value(n)) {
                names.users.insert(
                    (acc_name.clone(), user_name.clone()),
                    user_key(op_name, acc_name, user_name, user),
                );
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
                            key(
                                address::key(&address::signing_key(op_name, acc_name, role), l),
                                KeyKind::Account,
                                None,
                            )
                        })
                        .collect();
                    (role.as_str(), (refs, sk))
                })
                .collect();
            let id = ObjectId::account(op_name, acc_name);
            out.insert(
                id.clone(),
                DesiredObject {
                    claims: DesiredClaims::Account(Box::new(account_claims(
                        acc_name, acc, &acc_key, &roles, op, &names,
                    ))),
                    new_keys: roles.values().flat_map(|(refs, _)| unbound(refs)).collect(),
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
            // Each role's signer, and whether it is scoped: shared by its users.
            let role_signers: BTreeMap<&str, (Arc<KeyRef>, Option<Arc<str>>)> = roles
                .iter()
                .filter_map(|(r, (refs, sk))| {
                    let first = Arc::new(refs.first()?.clone());
                    Some((*r, (first, sk.is_scoped().then(|| Arc::from(*r)))))
                })
                .collect();
            let acc_signer = Arc::new(acc_key.clone());
            for (user_name, user) in &acc.users {
                let user_key = user_key(op_name, acc_name, user_name, user);
                let (signer, scoped_role) = user
                    .signer
                    .as_deref()
                    .and_then(|r| role_signers.get(r))
                    .cloned()
                    .unwrap_or_else(|| (acc_signer.clone(), None));
                let issuer_account = (signer.address != acc_key.address).then(|| acc_key.value());
                let id = ObjectId::user(op_name, acc_name, user_name);
                out.insert(
                    id.clone(),
                    DesiredObject {
                        claims: DesiredClaims::User(CompactUser::new(&user_claims(
                            user_name,
                            user,
                            &user_key,
                            issuer_account,
                            scoped_role.is_some(),
                        ))),
                        new_keys: Vec::new(),
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
