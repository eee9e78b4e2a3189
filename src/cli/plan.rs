//! `natsform plan`: what apply would change. Reads no secrets.

use std::path::Path;
use std::process::ExitCode;

use super::lock::{self, LockArgs};
use super::Output;
use crate::plan::views;
use crate::runlock::Mode;
use crate::workspace::{Parsing, Signatures, Workspace};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How to print the plan: text for a terminal, a versioned JSON
    /// document, or Markdown for a pull-request comment.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan (JSON with a fingerprint of its inputs) for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Plan what merging into git revision REF would do: this manifest
    /// (of the working tree, or of --head) against the lock, store and
    /// vault committed at REF. Reads only git objects and the manifest;
    /// writes nothing.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// With --base: take the manifest from git revision REF too, not from
    /// the working tree.
    #[arg(long, value_name = "REF", requires = "base")]
    pub head: Option<String>,
    /// Also read what the servers hold (each operator's `resolver.urls`,
    /// or --push) and show accounts they lack, hold in another version,
    /// or hold without this manifest managing them.
    #[arg(long, conflicts_with = "base")]
    pub live: bool,
    /// Verify the signature of every stored JWT, even those whose exact
    /// bytes an earlier plan verified (remembered in the user's cache
    /// directory, never in the repository), and refresh that cache.
    #[arg(long)]
    pub verify_all: bool,
    /// With --live and without --creds: age identity file that opens the
    /// system account's key (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE", requires = "live")]
    pub identity: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub deploy: super::deploy::DeployArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    // One reading of the clock for the whole command.
    let now = crate::workspace::now();
    let format = if args.json { Format::Json } else { args.format };
    let (ws, held, merge) = match &args.base {
        Some(base) => {
            let (ws, merge) = super::plan_base::open(path, base, args.head.as_deref())?;
            // Every view shows what was compared (the plan carries it); a
            // JSON document on stdout is for machines: say it on stderr too.
            if format == Format::Json {
                let lines =
                    views::merge_lines(&merge, &|t| crate::safepath::escape_line(t).into_owned());
                lines.iter().for_each(|l| out.note(l));
            }
            // Git objects do not change under us: no run lock to take.
            (ws, None, Some(merge))
        }
        None => {
            let held = lock::take(path, Mode::Shared, &args.lock, out)?;
            let signatures = if args.verify_all {
                Signatures::VerifyAll
            } else {
                Signatures::Remembered
            };
            let parsing = parsing_of(&args);
            let ws = Workspace::open_cached(path, signatures, parsing)?;
            ws.cache_notes().iter().for_each(|n| out.note(n));
            if parsing == Parsing::Refreshed {
                // Whatever the servers then say (`--live` may fail on
                // them): the entry holds this parse from now on.
                remember_parsed(&ws, out);
            }
            if args.verify_all {
                // Nothing remembered is taken on trust: the bundles apply
                // remembered as checked (which plan, holding no secret,
                // cannot check) are forgotten, so the next apply checks
                // every line of each bundle it seals again.
                if let Err(e) = ws.forget_checked_bundles() {
                    out.note(&format!("could not forget the checked bundles ({e})"));
                }
            }
            (ws, Some(held), None)
        }
    };
    let deploy_flags = !args.deploy.push.is_empty()
        || args.deploy.creds.is_some()
        || args.deploy.tls_ca.is_some()
        || args.deploy.tls_cert.is_some();
    if deploy_flags && !args.live {
        anyhow::bail!("--push, --creds and --tls-* choose the servers `plan --live` reads\n  = help: add --live");
    }
    let mut plan = if args.live {
        let targets = crate::deploy::targets(&ws, &args.deploy.overrides(false))?;
        if targets.is_empty() {
            anyhow::bail!("plan --live: no operator of the manifest has `resolver.urls`\n  = help: set `resolver.urls` on the operator, or name a server with --push URL");
        }
        let sources = crate::keys::IdentitySources::from_env(args.identity.clone());
        let (states, _sessions) =
            super::deploy::read_live(&ws, &targets, args.deploy.creds.as_ref(), &sources, out)?;
        ws.plan_live(now, &states)
    } else {
        ws.plan(now)
    };
    plan.base = merge;
    if let Some(file) = &args.out {
        let text = crate::plan::saved::save(&plan, &ws.snapshot());
        crate::fsutil::write_atomic(file, text.as_bytes(), 0o644)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
        out.note(&format!(
            "Saved the plan to {}; apply it with `natsform apply {}`.",
            file.display(),
            file.display()
        ));
    }
    // Everything is read: printing (perhaps into a slow pipe) needs no lock.
    drop(held);
    match format {
        Format::Text => out.plan(&plan),
        Format::Json => out.result(&views::json::json(&plan)),
        Format::Markdown => out.result(&views::markdown::markdown(
            &plan,
            &path.display().to_string(),
        )),
    }
    // After the plan is out: remembering is an optimisation for the next
    // run, and a cache that cannot be written is at most a note.
    remember_verified(&ws, out);
    if parsing_of(&args) == Parsing::Remembered {
        remember_parsed(&ws, out);
    }
    let result = if !plan.blockers.is_empty() {
        let shown = match format {
            Format::Text => Shown::Text,
            Format::Json => Shown::Json,
            Format::Markdown => Shown::Markdown,
        };
        Err(anyhow::anyhow!(blocked_message(&plan, shown)))
    } else if args.detailed_exitcode && !plan.is_empty() {
        Ok(ExitCode::from(2))
    } else {
        Ok(ExitCode::SUCCESS)
    };
    // The process ends now: the workspace (100,000 users' JWTs, the
    // manifest, the lock) and the plan are left for the OS to reclaim
    // instead of being freed object by object (≈ 0.08 s at 100,000
    // users). Nothing observable depends on their drop: the run lock was
    // released above (`held`), the cache was saved by `remember_verified`,
    // and neither holds a file open for writing.
    std::mem::forget(ws);
    std::mem::forget(plan);
    result
}

/// Writes the project's verified-signature cache (a note when it cannot),
/// and with `NATSFORM_DEBUG_VERIFY` set, says on stderr how the store's
/// signatures were checked.
pub(super) fn remember_verified(ws: &Workspace, out: &Output) {
    if let Err(e) = ws.remember_verified() {
        out.note(&format!(
            "could not remember the verified signatures ({e}); the next plan verifies them again"
        ));
    }
    debug_verification(ws, None);
}

/// Whether plan may take the manifest's model from the parsed-manifest
/// cache. `--live` opens a system-account seed, signs with it and connects
/// where the manifest says: never on a cached model; `--verify-all` takes
/// nothing remembered. Both write their parse as soon as it is made.
fn parsing_of(args: &Args) -> Parsing {
    if args.verify_all || args.live {
        Parsing::Refreshed
    } else {
        Parsing::Remembered
    }
}

/// Remembers the manifest's model for the next plan of the same text; a
/// cache that cannot be written is a note. `NATSFORM_DEBUG_MANIFEST=1`:
/// one line on stderr saying where the model came from (for tests).
fn remember_parsed(ws: &Workspace, out: &Output) {
    if let Err(e) = ws.remember_parsed() {
        out.note(&format!(
            "could not remember the parsed manifest ({e}); the next plan parses it again"
        ));
    }
    if std::env::var_os("NATSFORM_DEBUG_MANIFEST").is_some_and(|v| !v.is_empty()) {
        let from = match ws.manifest_remembered() {
            true => "remembered",
            false => "parsed",
        };
        eprintln!("natsform: manifest: {from}");
    }
}

/// `NATSFORM_DEBUG_VERIFY=1`: one line on stderr, for tests and for
/// seeing the cache work.
/// `again`: how many remembered ones apply verified again.
pub(super) fn debug_verification(ws: &Workspace, again: Option<(usize, &str)>) {
    if std::env::var_os("NATSFORM_DEBUG_VERIFY").is_some_and(|v| !v.is_empty()) {
        let v = ws.verification();
        let again = again
            .map(|(n, command)| format!(", {n} verified again for {command}"))
            .unwrap_or_default();
        eprintln!(
            "natsform: verify: {} JWTs, {} signatures checked, {} remembered{again}",
            v.jwts, v.checked, v.remembered
        );
    }
}

/// The error of a plan that apply would refuse. The blockers are part of
/// the plan (the text view's `Error:` lines, the JSON `blockers`, the
/// Markdown list): when the plan was printed, the error is one line that
/// points at them, so each is printed once; when it was not (`apply
/// --json`, `--quiet`), the error lists them.
pub(super) fn blocked_message(plan: &crate::plan::Plan, shown: Shown) -> String {
    let n = plan.blockers.len();
    let head = format!(
        "apply refuses this plan: {n} problem{s} in the repository must be fixed first",
        s = if n == 1 { "" } else { "s" },
    );
    match shown {
        Shown::Text => format!(
            "{head} (the `Error:` line{s} of the plan above); nothing was changed",
            s = if n == 1 { "" } else { "s" }
        ),
        Shown::Json => format!("{head} (the plan's `blockers`); nothing was changed"),
        Shown::Markdown => format!("{head} (listed in the plan above); nothing was changed"),
        Shown::Not => format!(
            "{head}; nothing was changed\n{}",
            plan.blockers
                .iter()
                .map(|b| format!("  - {b}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// Where the blockers were printed, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    Text,
    Json,
    Markdown,
    Not,
}
