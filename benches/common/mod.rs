//! What the benchmarks share: the generated manifest (the shape of
//! `benches/plan.rs`: ACCOUNTS × USERS users, ROLES templated scoped roles
//! per account), reading sizes from the environment, and the same-run
//! baseline of verifying every JWT's signature.

use std::fmt::Write as _;
use std::time::Instant;

use natsform::keys::KeyPair;
use rayon::prelude::*;

/// Templated scoped roles per account; user `uN` is signed by role `N mod ROLES`.
pub const ROLES: usize = 5;

/// The recipient `benches/plan.rs` seals to (a public key only: plan needs no secret).
pub const PLAN_RECIPIENT: &str = "age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9";

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One generated trust tree: operator `bench` with a signing key, a system
/// account with one user, and accounts `acc0000`… of `users` users each.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// Who the seeds are sealed to (`[secrets] recipients`).
    pub recipient: &'a str,
    pub accounts: usize,
    pub users: usize,
    /// Every account's role0 also allows `changed.>` (a role change).
    pub extra_subject: bool,
    /// The label of every role's key (`keys = [..]`); `None` is the
    /// default label: renaming it rotates every role's key.
    pub role_key: Option<&'a str>,
    /// (account, user) left out of the manifest (a deleted user).
    pub without_user: Option<(usize, usize)>,
}

impl<'a> Shape<'a> {
    pub fn new(recipient: &'a str, accounts: usize, users: usize) -> Self {
        Shape {
            recipient,
            accounts,
            users,
            extra_subject: false,
            role_key: None,
            without_user: None,
        }
    }

    /// The manifest (TOML).
    pub fn manifest(&self) -> String {
        let mut t = format!("[secrets]\nrecipients = [\"{}\"]\n\n[operators.bench]\nsigning_keys = [\"ops\"]\nsystem_account = \"SYS\"\n\n[operators.bench.accounts.SYS.users.sys]\n", self.recipient);
        for a in 0..self.accounts {
            for r in 0..ROLES {
                let _ = writeln!(
                    t,
                    "[operators.bench.accounts.acc{a:04}.signing_keys.role{r}]"
                );
                if let Some(label) = self.role_key {
                    let _ = writeln!(t, "keys = [\"{label}\"]");
                }
                let extra = if self.extra_subject && r == 0 {
                    ", \"changed.>\""
                } else {
                    ""
                };
                let _ = writeln!(t, "sub = {{ allow = [\"{{{{account-name()}}}}.{{{{name()}}}}.>\", \"shared.r{r}.>\"{extra}] }}");
                let _ = writeln!(t, "pub = {{ allow = [\"{{{{account-name()}}}}.{{{{tag(team)}}}}.>\", \"_INBOX.>\"] }}");
            }
            for u in 0..self.users {
                if self.without_user == Some((a, u)) {
                    continue;
                }
                let _ = writeln!(t, "[operators.bench.accounts.acc{a:04}.users.u{u:03}]\nsigner = \"role{}\"\ntags = [\"team:t{}\"]", u % ROLES, u % 7);
            }
        }
        t
    }
}

/// (issuer, signed bytes, signature) of every JWT.
pub fn signature_inputs(tokens: &[String]) -> Vec<(KeyPair, Vec<u8>, Vec<u8>)> {
    use data_encoding::BASE64URL_NOPAD;
    tokens
        .iter()
        .map(|t| {
            let dot = t.rfind('.').unwrap();
            let payload = t.split('.').nth(1).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap())
                    .unwrap();
            let iss = claims["iss"].as_str().unwrap();
            (
                KeyPair::from_public_key(iss).unwrap(),
                t.as_bytes()[..dot].to_vec(),
                BASE64URL_NOPAD.decode(&t.as_bytes()[dot + 1..]).unwrap(),
            )
        })
        .collect()
}

/// Seconds to verify every signature once, on one thread.
pub fn verify_1(inputs: &[(KeyPair, Vec<u8>, Vec<u8>)]) -> f64 {
    let t = Instant::now();
    for (k, msg, sig) in inputs {
        k.verify(msg, sig).unwrap();
    }
    t.elapsed().as_secs_f64()
}

/// Seconds to verify every signature once, on every rayon thread.
pub fn verify_n(inputs: &[(KeyPair, Vec<u8>, Vec<u8>)]) -> f64 {
    let t = Instant::now();
    inputs
        .par_iter()
        .for_each(|(k, msg, sig)| k.verify(msg, sig).unwrap());
    t.elapsed().as_secs_f64()
}
