//! `natsform apply`: show the plan, confirm, and make it so.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::lock::{self, LockArgs};
use super::Output;
use crate::apply;
use crate::keys::IdentitySources;
use crate::runlock::Mode;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved by `plan --out`: apply exactly it, without asking;
    /// refused if the manifest, lock or store changed since.
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,
    /// Apply without asking for confirmation (for pipelines).
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow deleting operators and system accounts.
    #[arg(long)]
    pub allow_destroy: bool,
    /// age identity file to decrypt seeds with (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    // Held from before the workspace is read (so the plan applied is computed
    // under it) until the last write; the OS releases it if we die.
    let _lock = lock::take(path, Mode::Exclusive, &args.lock, out)?;
    // One reading of the clock: the plan shown and the JWTs signed agree.
    let now = crate::workspace::now();
    let ws = Workspace::open(path)?;
    let plan = ws.plan(now);
    let saved = match &args.plan_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the plan {}", file.display()))?;
            crate::plan::saved::check(&text, &plan, &ws.fingerprint())
                .with_context(|| format!("cannot apply {}", file.display()))?;
            true
        }
        None => false,
    };
    if !plan.blockers.is_empty() {
        if !out.quiet {
            out.plan(&plan);
        }
        bail!(super::plan::blocked_message(&plan));
    }
    if plan.is_empty() {
        remove_leftovers(&ws, out);
        out.result("No changes. The store matches the manifest.\n");
        return Ok(ExitCode::SUCCESS);
    }
    if !out.quiet {
        out.plan(&plan);
    }
    if !plan.protected_deletes.is_empty() && !args.allow_destroy {
        bail!(
            "the plan deletes {}; nothing was changed\n  = help: if that is intended, run apply again with --allow-destroy",
            plan.protected_deletes
                .iter()
                .map(|id| id.address())
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    if !args.auto_approve && !saved {
        if !out.interactive() {
            bail!("apply needs confirmation, and there is no terminal to ask on\n  = help: review the plan above and pass --auto-approve to apply it");
        }
        eprint!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            out.note("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
    }
    let sources = IdentitySources::from_env(args.identity);
    for w in sources.warnings() {
        out.warning(&w);
    }
    let report = apply::apply(&ws, &plan, &sources, now, &mut |line| out.note(line))?;
    remove_leftovers(&ws, out);
    out.result(&format!(
        "Apply complete: {} key{} generated, {} JWT{} written, {} deleted.\n",
        report.keys_generated,
        if report.keys_generated == 1 { "" } else { "s" },
        report.jwts_written,
        if report.jwts_written == 1 { "" } else { "s" },
        report.jwts_deleted
    ));
    Ok(ExitCode::SUCCESS)
}

/// Temporary files an interrupted apply left in the vault, the store and the
/// lock's directory. Called under the exclusive lock, once apply completed:
/// no other natsform run can be writing them.
fn remove_leftovers(ws: &Workspace, out: &Output) {
    let lock_dir = crate::runlock::project_dir(&ws.lock_path);
    // store/<operator>/accounts/<account>/users/: four levels below the root.
    lock::sweep(
        &[(&ws.vault_dir, 0), (ws.store.root(), 4), (&lock_dir, 0)],
        out,
    );
}
