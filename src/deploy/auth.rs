//! Who natsform is on the servers: a short-lived system-account user it
//! mints in memory (as `nsc push` does), or a creds file the operator
//! names. And the operator-signed request that deletes accounts.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::claims::{self, KeyKind, Permission, UserClaims};
use crate::keys::KeyPair;
use crate::manifest::{address, model::Operator};

/// How long a minted user is valid: enough to connect; the connection
/// outlives it (servers check expiry at connect time and close expired
/// connections, so pushes that take longer reconnect… never: a push is
/// one connection, done well within this).
pub const MINTED_VALIDITY_SECS: i64 = 120;

/// The subjects a minted user may publish to: the claim subjects natsform
/// uses and the server ping that counts the servers.
pub const PUBLISH_SUBJECTS: &[&str] = &[
    "$SYS.REQ.SERVER.PING",
    "$SYS.REQ.CLAIMS.LIST",
    "$SYS.REQ.CLAIMS.UPDATE",
    "$SYS.REQ.CLAIMS.DELETE",
    "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
];

/// The largest creds file natsform reads.
const MAX_CREDS_BYTES: u64 = 64 * 1024;

/// A user to connect as: its JWT and key pair. Never printed, never written.
pub struct Credentials {
    pub jwt: String,
    pub key: KeyPair,
    /// The inbox prefix the user may subscribe below.
    pub inbox: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// The inbox prefix of a minted user: unique per run, so its subscribe
/// permission covers nothing but its own replies.
fn fresh_inbox(user: &str) -> String {
    format!("_INBOX_natsform.{}", &user[user.len() - 16..])
}

/// The lock address of the key that signs the minted user: the system
/// account's identity key, or under strict signing-key usage the first
/// key of its first unscoped signing-key role.
pub fn system_signer_address(op_name: &str, op: &Operator) -> Result<String> {
    let sys = op
        .system_account
        .as_deref()
        .ok_or_else(|| anyhow!("operator {op_name} has no system account to deploy with"))?;
    let acc = op
        .accounts
        .get(sys)
        .ok_or_else(|| anyhow!("operator {op_name}: system account {sys} is not declared"))?;
    if !op.strict_signing_key_usage {
        return Ok(address::key(&address::account(op_name, sys), &acc.key));
    }
    for (role, sk) in &acc.signing_keys {
        if sk.is_scoped() {
            continue;
        }
        if let Some(label) = sk.keys.first() {
            return Ok(address::key(
                &address::signing_key(op_name, sys, role),
                label,
            ));
        }
    }
    bail!(
        "operator {op_name} uses strict signing-key usage and its system account {sys} has no unscoped signing key to sign natsform's deploy user with\n  = help: add one, e.g. `[operators.{op_name}.accounts.{sys}.signing_keys.deploy]`, apply with --no-push, or pass --creds FILE"
    )
}

/// Mints the deploy user: a fresh user key, valid [`MINTED_VALIDITY_SECS`]
/// from `now` (the real clock: servers check it), signed by `signer`, a
/// key of the system account `system_account`.
pub fn mint(signer: &KeyPair, system_account: &str, now: i64) -> Result<Credentials> {
    let user = crate::keys::generate(crate::keys::KeyKind::User);
    let public = user.public_key();
    let inbox = fresh_inbox(&public);
    let mut c = UserClaims::new(public);
    c.data.name = "natsform deploy".into();
    c.data.iat = now;
    c.data.exp = now + MINTED_VALIDITY_SECS;
    if signer.public_key() != system_account {
        c.nats.issuer_account = system_account.to_string();
    }
    let perms = &mut c.nats.permission_limits.permissions;
    perms.publish = Permission {
        allow: PUBLISH_SUBJECTS.iter().map(|s| s.to_string()).collect(),
        deny: vec![],
    };
    perms.subscribe = Permission {
        allow: vec![format!("{inbox}.>")],
        deny: vec![],
    };
    let jwt = claims::encode(&mut c, signer).context("signing natsform's deploy user")?;
    Ok(Credentials {
        jwt,
        key: user,
        inbox,
    })
}

/// Reads a creds file named on the command line. Its content is never
/// quoted in an error.
pub fn from_creds_file(path: &Path) -> Result<Credentials> {
    use std::io::Read;
    let shown = crate::safepath::escape_line(&path.display().to_string()).into_owned();
    let file =
        std::fs::File::open(path).with_context(|| format!("reading the creds file {shown}"))?;
    let mut text = String::new();
    file.take(MAX_CREDS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| anyhow!("the creds file {shown} is not text"))?;
    if text.len() as u64 > MAX_CREDS_BYTES {
        bail!("the creds file {shown} is larger than {MAX_CREDS_BYTES} bytes: not a creds file");
    }
    let creds = claims::parse_creds(&text).map_err(|_| {
        anyhow!("the creds file {shown} holds no user JWT and seed\n  = help: pass a file written by `natsform creds` or `nsc generate creds`")
    })?;
    let key = creds
        .seed
        .key_pair()
        .map_err(|_| anyhow!("the creds file {shown} holds no valid user seed"))?;
    // Below `_INBOX.>`, which system users commonly may subscribe to, and
    // unique to this run: another client of the same user never sees our
    // replies, nor we theirs.
    let nonce = crate::keys::generate(crate::keys::KeyKind::User).public_key();
    Ok(Credentials {
        jwt: creds.jwt.trim().to_string(),
        key,
        inbox: format!("_INBOX.natsform{}", &nonce[nonce.len() - 16..]),
    })
}

/// The `$SYS.REQ.CLAIMS.DELETE` request: a generic claim, self-signed by
/// an operator key (`sub == iss`), listing the accounts to delete.
pub fn delete_request(operator_key: &KeyPair, accounts: &[String], now: i64) -> Result<String> {
    use data_encoding::BASE64URL_NOPAD;
    let issuer = operator_key.public_key();
    if claims::public_key_kind(&issuer) != Some(KeyKind::Operator) {
        bail!("a delete request must be signed by an operator key");
    }
    let data = claims::ClaimsData {
        iat: now,
        iss: issuer.clone(),
        sub: issuer,
        ..Default::default()
    };
    let jti = claims::compute_jti(&data);
    let mut payload = serde_json::Map::new();
    payload.insert("jti".into(), jti.into());
    payload.insert("iat".into(), now.into());
    payload.insert("iss".into(), data.iss.clone().into());
    payload.insert("sub".into(), data.sub.clone().into());
    payload.insert(
        "nats".into(),
        serde_json::json!({ "accounts": accounts, "type": "generic", "version": claims::LIB_VERSION }),
    );
    let payload = serde_json::Value::Object(payload).to_string();
    let input = format!(
        "{}.{}",
        claims::HEADER_B64,
        BASE64URL_NOPAD.encode(payload.as_bytes())
    );
    let sig = operator_key
        .sign(input.as_bytes())
        .map_err(|_| anyhow!("signing the delete request"))?;
    Ok(format!("{input}.{}", BASE64URL_NOPAD.encode(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_user_is_short_lived_and_narrow() {
        let sys = crate::keys::generate(crate::keys::KeyKind::Account);
        let c = mint(&sys, &sys.public_key(), 1_000).unwrap();
        let d = claims::decode(&c.jwt).unwrap();
        let claims::AnyClaims::User(u) = d.claims else {
            panic!("not a user")
        };
        assert_eq!(u.data.iss, sys.public_key());
        assert_eq!(u.data.exp - u.data.iat, MINTED_VALIDITY_SECS);
        assert!(u.nats.issuer_account.is_empty());
        let p = &u.nats.permission_limits.permissions;
        assert_eq!(p.publish.allow.len(), PUBLISH_SUBJECTS.len());
        assert_eq!(p.subscribe.allow, vec![format!("{}.>", c.inbox)]);
        // Signed by a signing key: issuer_account names the account.
        let sk = crate::keys::generate(crate::keys::KeyKind::Account);
        let c = mint(&sk, &sys.public_key(), 1_000).unwrap();
        let claims::AnyClaims::User(u) = claims::decode(&c.jwt).unwrap().claims else {
            panic!()
        };
        assert_eq!(u.nats.issuer_account, sys.public_key());
        assert_eq!(format!("{c:?}"), "Credentials(<redacted>)");
    }

    #[test]
    fn delete_request_is_a_self_signed_generic_claim() {
        let op = crate::keys::generate(crate::keys::KeyKind::Operator);
        let acc = crate::keys::generate(crate::keys::KeyKind::Account).public_key();
        let jwt = delete_request(&op, std::slice::from_ref(&acc), 1_000).unwrap();
        let d = claims::decode(&jwt).unwrap();
        let v: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(v["iss"], v["sub"]);
        assert_eq!(v["iss"], op.public_key());
        assert_eq!(v["nats"]["accounts"][0], acc);
        assert!(delete_request(
            &crate::keys::generate(crate::keys::KeyKind::Account),
            &[acc],
            1
        )
        .is_err());
    }
}
