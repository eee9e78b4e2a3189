//! `natsform server-config`: print a nats-server config include for an
//! operator. Reads the store only; needs no secret.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::lock::{self, LockArgs};
use super::Output;
use crate::runlock::Mode;
use crate::serverconfig::{self, Resolver};
use crate::tree::ObjectKind;
use crate::workspace::Workspace;

pub const AFTER_HELP: &str = "\
What to do next:
  natsform apply                                  write the store (if not done yet)
  natsform server-config > natsform.conf          this command
  nats-server -c natsform.conf                    or `include natsform.conf` in your config
  natsform apply                                  pushes the accounts (full or cache resolver)
  natsform creds ACCOUNT/USER > user.creds        connect with `nats --creds user.creds …`

With --resolver memory every account is written into the config: generate it
again and restart the server after each apply. The config holds JWTs and
public keys only, never a seed.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator the server trusts (default: the manifest's only operator).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// The account resolver: `full` keeps every account pushed to it (for
    /// `natsform apply`), `cache` keeps the accounts in use, `memory`
    /// preloads every account in the config and accepts no pushes.
    #[arg(long, value_enum, default_value_t = ResolverKind::Full)]
    pub resolver: ResolverKind,
    /// full, cache: where the server keeps the JWTs (relative to the
    /// directory nats-server runs in) [default: ./jwt].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,
    /// full: whether the server deletes accounts natsform deletes
    /// (`$SYS.REQ.CLAIMS.DELETE`) [default: true].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub allow_delete: Option<bool>,
    /// full: how often servers of a cluster sync their JWTs [default: 2m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<i64>,
    /// cache: how long an account stays cached [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<i64>,
    /// full, cache: how long the server waits for an account it fetches
    /// [default: 1900ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<i64>,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `--resolver` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResolverKind {
    Full,
    Cache,
    Memory,
}

/// A positive duration (`500ms`, `30s`, `2m`, `1h`), in nanoseconds.
fn parse_duration(text: &str) -> Result<i64, String> {
    let nanos = crate::manifest::duration::Duration::parse(text)?.as_nanos();
    if nanos <= 0 {
        return Err("must be longer than 0s".into());
    }
    if nanos % 1_000 != 0 {
        return Err("must be a whole number of microseconds".into());
    }
    Ok(nanos)
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let resolver = resolver(&args)?;
    let held = lock::take(path, Mode::Shared, &args.lock, out)?;
    let ws = Workspace::open(path)?;
    drop(held);
    let jwts = serverconfig::gather(&ws, args.operator.as_deref(), &resolver)?;
    out.result(&serverconfig::render(&jwts, &resolver));
    // A store behind the manifest makes a config behind it too (users are
    // not in the config: only the operator's and accounts' JWTs count).
    let pending = ws
        .plan(crate::workspace::now())
        .actions
        .iter()
        .filter(|a| a.id.operator == jwts.name && a.id.kind() != ObjectKind::User)
        .count();
    if pending > 0 {
        out.warning(&format!(
            "the store is behind the manifest ({pending} change{s} to operator `{}` and its accounts not applied): this config is what the store holds\n  = help: run `natsform apply`, then `natsform server-config` again",
            crate::safepath::escape_line(&jwts.name),
            s = if pending == 1 { "" } else { "s" },
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The resolver the flags ask for; flags the chosen resolver does not take
/// are refused (nats-server refuses `interval`/`allow_delete` on a cache
/// resolver and `ttl` on a full one) rather than silently dropped.
fn resolver(args: &Args) -> anyhow::Result<Resolver> {
    let given = |set: bool, flag: &str, takes: &[ResolverKind]| -> anyhow::Result<()> {
        if set && !takes.contains(&args.resolver) {
            let names: Vec<&str> = takes
                .iter()
                .map(|k| match k {
                    ResolverKind::Full => "full",
                    ResolverKind::Cache => "cache",
                    ResolverKind::Memory => "memory",
                })
                .collect();
            bail!(
                "{flag} does not apply to --resolver {}\n  = help: it is a setting of --resolver {}; leave it out",
                match args.resolver {
                    ResolverKind::Full => "full",
                    ResolverKind::Cache => "cache",
                    ResolverKind::Memory => "memory",
                },
                names.join(" or ")
            );
        }
        Ok(())
    };
    use ResolverKind::{Cache, Full};
    given(args.dir.is_some(), "--dir", &[Full, Cache])?;
    given(args.allow_delete.is_some(), "--allow-delete", &[Full])?;
    given(args.interval.is_some(), "--interval", &[Full])?;
    given(args.ttl.is_some(), "--ttl", &[Cache])?;
    given(args.timeout.is_some(), "--timeout", &[Full, Cache])?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| serverconfig::DEFAULT_DIR.to_string());
    if let Some(problem) = serverconfig::dir_problem(&dir) {
        bail!(
            "--dir {problem}\n  = help: pass a directory path without quotes, backslashes, `$` or control characters"
        );
    }
    let timeout_nanos = args.timeout.unwrap_or(serverconfig::DEFAULT_TIMEOUT_NANOS);
    Ok(match args.resolver {
        ResolverKind::Full => Resolver::Full {
            dir,
            allow_delete: args.allow_delete.unwrap_or(true),
            interval_nanos: args
                .interval
                .unwrap_or(serverconfig::DEFAULT_INTERVAL_NANOS),
            timeout_nanos,
        },
        ResolverKind::Cache => Resolver::Cache {
            dir,
            ttl_nanos: args.ttl.unwrap_or(serverconfig::DEFAULT_TTL_NANOS),
            timeout_nanos,
        },
        ResolverKind::Memory => Resolver::Memory,
    })
}
