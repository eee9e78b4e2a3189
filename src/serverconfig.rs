//! `natsform server-config`: a nats-server config include that trusts one
//! operator of the manifest, as `nsc generate config` writes it (see
//! `nats-jwt-facts.md` §10.4, §10.5).
//!
//! Two halves, both pure: [`gather`] picks the operator's JWTs out of what
//! [`Workspace`] already read and verified (no file is read here, no secret
//! is needed), refusing a store that is not applied yet; [`render`] turns
//! them and a [`Resolver`] into the config text.
//!
//! The text is accepted by nats-server 2.9.10 and the newest release in
//! every mode: 2.9.10's map form knows only `type: full` and `type: cache`
//! (no `type: mem`, no `hard_delete`), so the memory resolver is written in
//! the string form `resolver: MEMORY`, and `hard_delete` is never written.
//! The cache resolver refuses `interval` and `allow_delete`, the full one
//! `ttl` (both versions): each mode writes only the keys it accepts.

use std::fmt::Write;

use crate::plan::existing::DecodedJwt;
use crate::safepath::escape_line;
use crate::tree::{ObjectId, ObjectKind};
use crate::workspace::Workspace;

/// Default resolver directory, relative to where nats-server runs (as nsc).
pub const DEFAULT_DIR: &str = "./jwt";
/// Default full-resolver sync interval, in nanoseconds (nsc: `2m`).
pub const DEFAULT_INTERVAL_NANOS: i64 = 2 * 60 * 1_000_000_000;
/// Default resolver fetch timeout, in nanoseconds (nsc: `1.9s`).
pub const DEFAULT_TIMEOUT_NANOS: i64 = 1_900_000_000;
/// Default cache-resolver TTL, in nanoseconds (nsc: `1h`).
pub const DEFAULT_TTL_NANOS: i64 = 3_600 * 1_000_000_000;

/// Which account resolver the server runs, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// The nats-based resolver that keeps every account (`type: full`):
    /// what `natsform apply` pushes to.
    Full {
        dir: String,
        allow_delete: bool,
        interval_nanos: i64,
        timeout_nanos: i64,
    },
    /// The nats-based resolver that caches the accounts in use
    /// (`type: cache`); it takes updates for those, no deletes.
    Cache {
        dir: String,
        ttl_nanos: i64,
        timeout_nanos: i64,
    },
    /// Every account preloaded in the config; nothing can be pushed.
    Memory,
}

impl Resolver {
    /// The word the `--resolver` flag uses.
    pub fn name(&self) -> &'static str {
        match self {
            Resolver::Full { .. } => "full",
            Resolver::Cache { .. } => "cache",
            Resolver::Memory => "memory",
        }
    }
}

/// One account JWT to write: name, public key and the JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountJwt {
    pub name: String,
    pub public: String,
    pub jwt: String,
}

/// What the config is made of: one operator's JWTs from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorJwts {
    pub name: String,
    pub jwt: String,
    pub system_account: Option<AccountJwt>,
    /// Every account of the operator in the store (the system account
    /// too), sorted by name.
    pub accounts: Vec<AccountJwt>,
}

/// Why no config can be made; each says how to fix it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerConfigError {
    #[error("the manifest declares no operator\n  = help: declare one under [operators.NAME], run `natsform apply`, then `natsform server-config`")]
    NoOperator,
    #[error("the manifest declares {count} operators ({names}); a server trusts the one you choose\n  = help: pass --operator NAME")]
    ChooseOperator { count: usize, names: String },
    #[error("the manifest declares no operator `{given}` (it declares {names})\n  = help: pass one of those to --operator")]
    UnknownOperator { given: String, names: String },
    #[error("operator `{operator}` has no system_account; a nats-based resolver (`--resolver {resolver}`) needs one\n  = help: declare an account (e.g. SYS) and set `system_account = \"SYS\"` under [operators.{operator}], run `natsform apply`, then `natsform server-config` again; or use `--resolver memory`")]
    NoSystemAccount { operator: String, resolver: String },
    #[error("the store holds no JWT for {address} yet\n  = help: run `natsform apply` first (it writes the store), then `natsform server-config` again")]
    NotApplied { address: String },
    #[error("the store's JWT for {address} cannot be used: {problem}\n  = help: `natsform plan` shows what apply would change; run `natsform apply`, then `natsform server-config` again")]
    Unusable { address: String, problem: String },
}

/// The JWTs of operator `chosen` (or of the manifest's only operator) from
/// the store `ws` read and verified. Refuses what a server would refuse or
/// what shows the store is behind the manifest: a missing or invalid JWT,
/// an account not signed by a key the operator trusts, an operator JWT
/// naming another system account than the store's.
pub fn gather(
    ws: &Workspace,
    chosen: Option<&str>,
    resolver: &Resolver,
) -> Result<OperatorJwts, ServerConfigError> {
    let operators = &ws.loaded.manifest.operators;
    let names = || {
        operators
            .keys()
            .map(|n| format!("`{}`", escape_line(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match chosen {
        Some(given) if operators.contains_key(given) => given.to_string(),
        Some(_) if operators.is_empty() => return Err(ServerConfigError::NoOperator),
        Some(given) => {
            return Err(ServerConfigError::UnknownOperator {
                given: escape_line(given).into_owned(),
                names: names(),
            })
        }
        None => match operators.len() {
            0 => return Err(ServerConfigError::NoOperator),
            1 => operators.keys().next().cloned().unwrap_or_default(),
            count => {
                return Err(ServerConfigError::ChooseOperator {
                    count,
                    names: names(),
                })
            }
        },
    };
    let manifest_op = &operators[&name];
    let sys_name = manifest_op.system_account.clone();
    if sys_name.is_none() && *resolver != Resolver::Memory {
        return Err(ServerConfigError::NoSystemAccount {
            operator: escape_line(&name).into_owned(),
            resolver: resolver.name().to_string(),
        });
    }

    let op_id = ObjectId::operator(&name);
    let op = verified(ws, &op_id)?;
    let claims = op.value();
    let mut trusted = vec![op.subject.clone()];
    if let Some(keys) = claims["nats"]["signing_keys"].as_array() {
        trusted.extend(keys.iter().filter_map(|k| k.as_str()).map(str::to_string));
    }

    let mut accounts = Vec::new();
    for (id, _) in ws
        .existing
        .iter()
        .filter(|(id, _)| id.operator == name && id.kind() == ObjectKind::Account)
    {
        let d = verified(ws, id)?;
        if !trusted.contains(&d.issuer) {
            return Err(ServerConfigError::Unusable {
                address: escape_line(&id.address()).into_owned(),
                problem: "it is signed by a key the operator's JWT does not trust".into(),
            });
        }
        accounts.push(AccountJwt {
            name: id.name().to_string(),
            public: d.subject.clone(),
            jwt: token(ws, id)?,
        });
    }

    let system_account = match &sys_name {
        None => None,
        Some(sys) => {
            let sys_id = ObjectId::account(&name, sys);
            let Some(found) = accounts.iter().find(|a| a.name == *sys) else {
                return Err(ServerConfigError::NotApplied {
                    address: escape_line(&sys_id.address()).into_owned(),
                });
            };
            if claims["nats"]["system_account"].as_str() != Some(found.public.as_str()) {
                return Err(ServerConfigError::Unusable {
                    address: escape_line(&op_id.address()).into_owned(),
                    problem: format!(
                        "it names another system account than the store's account `{}`",
                        escape_line(sys)
                    ),
                });
            }
            Some(found.clone())
        }
    };
    Ok(OperatorJwts {
        jwt: token(ws, &op_id)?,
        name,
        system_account,
        accounts,
    })
}

/// The decoded, verified stored JWT of `id`, or why there is none.
fn verified<'w>(ws: &'w Workspace, id: &ObjectId) -> Result<&'w DecodedJwt, ServerConfigError> {
    let address = || escape_line(&id.address()).into_owned();
    match ws.existing.get(id) {
        None => Err(ServerConfigError::NotApplied { address: address() }),
        Some(e) => e
            .decoded
            .as_ref()
            .map_err(|problem| ServerConfigError::Unusable {
                address: address(),
                problem: escape_line(problem).into_owned(),
            }),
    }
}

/// The stored token of `id`, checked to be nothing but a JWT (three
/// base64url parts), so that it cannot break out of its quotes.
fn token(ws: &Workspace, id: &ObjectId) -> Result<String, ServerConfigError> {
    let token = ws
        .existing
        .get(id)
        .map(|e| e.token.trim())
        .unwrap_or_default();
    let is_jwt = token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !is_jwt {
        return Err(ServerConfigError::Unusable {
            address: escape_line(&id.address()).into_owned(),
            problem: "it is not a compact JWT".into(),
        });
    }
    Ok(token.to_string())
}

/// Why `dir` cannot be written into the config, if it cannot: it is a
/// double-quoted string there, so no quote, backslash or control character.
pub fn dir_problem(dir: &str) -> Option<&'static str> {
    if dir.trim().is_empty() {
        Some("is empty")
    } else if dir.chars().any(|c| c == '"' || c == '\\' || c == '$') {
        Some("contains a quote, a backslash or `$`")
    } else if dir.chars().any(crate::safepath::is_unsafe_char) {
        Some("contains control characters")
    } else {
        None
    }
}

/// A positive duration in Go's `time.ParseDuration` syntax, in the largest
/// unit that holds it exactly (`2m`, `1900ms`).
pub fn go_duration(nanos: i64) -> String {
    const UNITS: [(&str, i64); 5] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    UNITS
        .iter()
        .find(|(_, n)| nanos % n == 0)
        .map(|(u, n)| format!("{}{u}", nanos / n))
        .unwrap_or_else(|| format!("{nanos}ns"))
}

/// The config include for `op` with `resolver`. Deterministic: the same
/// store gives the same bytes.
pub fn render(op: &OperatorJwts, resolver: &Resolver) -> String {
    let mut s = String::new();
    let name = comment_text(&op.name);
    let _ = writeln!(
        s,
        "# nats-server configuration for operator \"{name}\", written by `natsform server-config --resolver {}`.",
        resolver.name()
    );
    let _ = writeln!(
        s,
        "# Start nats-server with it (`nats-server -c FILE`) or include it in your config (`include FILE`)."
    );
    match resolver {
        Resolver::Memory => {
            let _ = writeln!(
                s,
                "# Every account is preloaded: after `natsform apply`, generate it again and restart the server."
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "# Then run `natsform apply`: it pushes the accounts to the resolver."
            );
        }
    }
    let _ = writeln!(s, "\n# Operator \"{name}\"");
    let _ = writeln!(s, "operator: \"{}\"", op.jwt);
    if let Some(sys) = &op.system_account {
        let _ = writeln!(s, "\n# System account \"{}\"", comment_text(&sys.name));
        let _ = writeln!(s, "system_account: \"{}\"", sys.public);
    }
    s.push('\n');
    match resolver {
        Resolver::Full {
            dir,
            allow_delete,
            interval_nanos,
            timeout_nanos,
        } => {
            let _ = writeln!(
                s,
                "# The nats-based resolver keeps every account pushed to it (in `dir`, relative to where"
            );
            let _ = writeln!(
                s,
                "# nats-server runs) and syncs them with the other servers of a cluster every `interval`."
            );
            let _ = writeln!(s, "resolver: {{");
            let _ = writeln!(s, "  type: full");
            let _ = writeln!(s, "  dir: \"{dir}\"");
            let _ = writeln!(s, "  allow_delete: {allow_delete}");
            let _ = writeln!(s, "  interval: \"{}\"", go_duration(*interval_nanos));
            let _ = writeln!(s, "  timeout: \"{}\"", go_duration(*timeout_nanos));
            let _ = writeln!(s, "}}");
        }
        Resolver::Cache {
            dir,
            ttl_nanos,
            timeout_nanos,
        } => {
            let _ = writeln!(
                s,
                "# The nats-based resolver in cache mode keeps the accounts in use (in `dir`, relative to"
            );
            let _ = writeln!(
                s,
                "# where nats-server runs) for `ttl`, and fetches the others from full resolvers."
            );
            let _ = writeln!(s, "resolver: {{");
            let _ = writeln!(s, "  type: cache");
            let _ = writeln!(s, "  dir: \"{dir}\"");
            let _ = writeln!(s, "  ttl: \"{}\"", go_duration(*ttl_nanos));
            let _ = writeln!(s, "  timeout: \"{}\"", go_duration(*timeout_nanos));
            let _ = writeln!(s, "}}");
        }
        Resolver::Memory => {
            let _ = writeln!(
                s,
                "# The memory resolver knows only the accounts preloaded below; it accepts no pushes."
            );
            let _ = writeln!(s, "resolver: MEMORY");
        }
    }
    let preload: Vec<&AccountJwt> = match resolver {
        Resolver::Memory => op.accounts.iter().collect(),
        _ => op.system_account.iter().collect(),
    };
    if !preload.is_empty() {
        s.push('\n');
        if *resolver != Resolver::Memory {
            let _ = writeln!(
                s,
                "# The system account is preloaded so that natsform can push the others."
            );
        }
        let _ = writeln!(s, "resolver_preload: {{");
        for account in preload {
            let _ = writeln!(s, "  # Account \"{}\"", comment_text(&account.name));
            let _ = writeln!(s, "  {}: \"{}\"", account.public, account.jwt);
        }
        let _ = writeln!(s, "}}");
    }
    s
}

/// A name as it may stand in a one-line comment: escaped, without quotes.
fn comment_text(name: &str) -> String {
    escape_line(name).replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OperatorJwts {
        let sys = AccountJwt {
            name: "SYS".into(),
            public: "ASYS".into(),
            jwt: "a.b.c".into(),
        };
        OperatorJwts {
            name: "O\u{1b}[31m\"x".into(),
            jwt: "o.p.q".into(),
            system_account: Some(sys.clone()),
            accounts: vec![
                AccountJwt {
                    name: "A\nresolver: MEMORY".into(),
                    public: "AAAA".into(),
                    jwt: "d.e.f".into(),
                },
                sys,
            ],
        }
    }

    #[test]
    fn go_durations_use_the_largest_exact_unit() {
        assert_eq!(go_duration(DEFAULT_INTERVAL_NANOS), "2m");
        assert_eq!(go_duration(DEFAULT_TIMEOUT_NANOS), "1900ms");
        assert_eq!(go_duration(DEFAULT_TTL_NANOS), "1h");
        assert_eq!(go_duration(90 * 1_000_000_000), "90s");
        assert_eq!(go_duration(1_500), "1500ns");
    }

    #[test]
    fn names_cannot_leave_their_comment_line() {
        let text = render(&sample(), &Resolver::Memory);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.trim() == "resolver: MEMORY")
                .count(),
            1,
            "{text}"
        );
        for line in text.lines() {
            let code = line.trim();
            assert!(
                code.is_empty()
                    || code.starts_with('#')
                    || code.starts_with("operator: ")
                    || code.starts_with("system_account: ")
                    || code.starts_with("resolver")
                    || code == "}"
                    || code.starts_with("AAAA: ")
                    || code.starts_with("ASYS: "),
                "unexpected config line {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn memory_preloads_every_account_full_only_the_system_account() {
        let memory = render(&sample(), &Resolver::Memory);
        assert!(memory.contains("  AAAA: \"d.e.f\"") && memory.contains("  ASYS: \"a.b.c\""));
        let full = render(
            &sample(),
            &Resolver::Full {
                dir: DEFAULT_DIR.into(),
                allow_delete: true,
                interval_nanos: DEFAULT_INTERVAL_NANOS,
                timeout_nanos: DEFAULT_TIMEOUT_NANOS,
            },
        );
        assert!(!full.contains("AAAA") && full.contains("  ASYS: \"a.b.c\""));
        assert!(full.contains("  allow_delete: true\n  interval: \"2m\"\n"));
        // 2.9.10 knows neither; the cache resolver refuses interval and allow_delete.
        let cache = render(
            &sample(),
            &Resolver::Cache {
                dir: DEFAULT_DIR.into(),
                ttl_nanos: DEFAULT_TTL_NANOS,
                timeout_nanos: DEFAULT_TIMEOUT_NANOS,
            },
        );
        for text in [&memory, &full, &cache] {
            assert!(!text.contains("hard_delete") && !text.contains("type: mem"));
        }
        assert!(!cache.contains("interval") && !cache.contains("allow_delete"));
        assert!(!full.contains("ttl"));
    }

    #[test]
    fn dirs_that_would_break_their_quotes_are_refused() {
        assert_eq!(dir_problem("./jwt"), None);
        assert_eq!(dir_problem("/var/lib/nats jwt"), None);
        for bad in ["", "  ", "a\"b", "a\\b", "a\nb", "$HOME/jwt"] {
            assert!(dir_problem(bad).is_some(), "{bad:?}");
        }
    }
}
