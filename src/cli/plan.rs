//! `natsform plan`: what apply would change. Reads no secrets.

use std::path::Path;
use std::process::ExitCode;

use super::lock::{self, LockArgs};
use super::Output;
use crate::plan::views;
use crate::runlock::Mode;
use crate::workspace::Workspace;

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
    let (ws, held) = match &args.base {
        Some(base) => {
            let (ws, header) = super::plan_base::open(path, base, args.head.as_deref())?;
            // Human views show the header above the plan; JSON keeps stdout
            // one document.
            if format == Format::Json {
                header.iter().for_each(|l| out.note(l));
            } else {
                out.result(&format!("{}\n\n", header.join("\n")));
            }
            // Git objects do not change under us: no run lock to take.
            (ws, None)
        }
        None => {
            let held = lock::take(path, Mode::Shared, &args.lock, out)?;
            (Workspace::open(path)?, Some(held))
        }
    };
    let deploy_flags = !args.deploy.push.is_empty()
        || args.deploy.creds.is_some()
        || args.deploy.tls_ca.is_some()
        || args.deploy.tls_cert.is_some();
    if deploy_flags && !args.live {
        anyhow::bail!("--push, --creds and --tls-* choose the servers `plan --live` reads\n  = help: add --live");
    }
    let plan = if args.live {
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
    if let Some(file) = &args.out {
        let text = crate::plan::saved::save(&plan, &ws.fingerprint());
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
    if !plan.blockers.is_empty() {
        anyhow::bail!(blocked_message(&plan));
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The error of a plan that apply would refuse: what is wrong, once more
/// after the plan, so it is the last thing a reader sees.
pub(super) fn blocked_message(plan: &crate::plan::Plan) -> String {
    let n = plan.blockers.len();
    format!(
        "apply refuses this plan: {n} problem{s} in the repository must be fixed first; nothing was changed\n{}",
        plan.blockers
            .iter()
            .map(|b| format!("  - {b}"))
            .collect::<Vec<_>>()
            .join("\n"),
        s = if n == 1 { "" } else { "s" },
    )
}
