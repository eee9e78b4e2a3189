//! `natsform apply`: show the plan, confirm, and make it so.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::deploy::DeployArgs;
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
    /// age identity file to decrypt seeds with (repeatable); without it,
    /// $NATSFORM_AGE_IDENTITY, $NATSFORM_AGE_KEY, $SOPS_AGE_KEY_FILE,
    /// $SOPS_AGE_KEY, then the default files (see below).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Write the store only: push nothing to the servers.
    #[arg(long, conflicts_with_all = ["push", "creds"])]
    pub no_push: bool,
    /// Also delete, from the servers, accounts this manifest never managed.
    #[arg(long)]
    pub prune: bool,
    /// Print what apply did, and what each server said, as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Commit the store, lock and vault files this apply changed, and
    /// nothing else, on git's HEAD (refused, before anything is written,
    /// when those paths hold uncommitted changes). Git hooks are not run.
    #[arg(long)]
    pub commit: bool,
    /// The commit's author for --commit, as "Name <email>" (default: git
    /// config's user.name and user.email).
    #[arg(long, value_name = "NAME <EMAIL>", requires = "commit")]
    pub author: Option<String>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    // Held from before the workspace is read (so the plan applied is computed
    // under it) until the last write; the OS releases it if we die.
    let _lock = lock::take(path, Mode::Exclusive, &args.lock, out)?;
    // An apply interrupted while it rewrote store files in place left a
    // journal: finished first, before anything is read.
    finish_interrupted(path, out)?;
    // One reading of the clock: the plan shown and the JWTs signed agree.
    let now = crate::workspace::now();
    // Signatures an earlier plan verified are taken from the user's cache;
    // what this apply relies on is verified again below.
    let ws = Workspace::open_cached(
        path,
        crate::workspace::Signatures::Remembered,
        crate::workspace::Parsing::Refreshed,
    )?;
    ws.cache_notes().iter().for_each(|n| out.note(n));
    // The model apply parsed (and validated) is what the next plan reads
    // back, whatever this apply then does: an entry that differs in any
    // byte is replaced now.
    if let Err(e) = ws.remember_parsed() {
        out.note(&format!(
            "could not remember the parsed manifest ({e}); the next plan parses it again"
        ));
    }
    // Checked before anything is written, or even shown: the repository,
    // the author, and that the store, lock and vault are committed.
    let mut commit = if args.commit {
        Some(apply::commit::Commit::prepare(&ws, args.author.as_deref())?)
    } else {
        None
    };
    let sources = IdentitySources::from_env(args.identity.clone());
    // Where to push; apply that pushes first reads what the servers hold.
    let targets = crate::deploy::targets(&ws, &args.deploy.overrides(args.no_push))?;
    let (states, sessions) = if targets.is_empty() {
        Default::default()
    } else {
        super::deploy::read_live(&ws, &targets, args.deploy.creds.as_ref(), &sources, out)?
    };
    let (mut plan, state) = if states.is_empty() {
        ws.plan_and_state(now)
    } else {
        ws.plan_live_and_state(now, &states, args.prune)
    };
    // The desired state the plan was computed from, for the lock's keys:
    // apply signs from it when it generates no key (a deletion, an update;
    // 10,000 users: 25 ms not spent building it again), and builds its own
    // with the new keys otherwise (then this one is freed at once).
    let mut state = Elsewhere(if plan.new_keys.is_empty() {
        Some(state)
    } else {
        crate::workspace::drop_elsewhere(state);
        None
    });
    // Before anything is shown or written (see `Workspace::verify_relied_on`).
    let again = ws.verify_relied_on(&plan);
    super::plan::debug_verification(&ws, again.as_ref().ok().map(|n| (*n, "apply")));
    again?;
    let saved = match &args.plan_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the plan {}", file.display()))?;
            // A saved plan fixes what apply writes to the store; what it
            // pushes always follows what the servers hold now (read just
            // above), so a plan saved with or without --live is accepted
            // when its store part is current.
            let (snapshot, names) = (ws.snapshot(), ws.input_names());
            crate::plan::saved::check(&text, &plan, &snapshot, &names)
                .or_else(|_| {
                    // When both fail, this error names what differs
                    // without the live part, which a plan saved without
                    // --live never had.
                    let mut store_only = plan.clone();
                    store_only.live.clear();
                    crate::plan::saved::check(&text, &store_only, &snapshot, &names)
                })
                .with_context(|| format!("cannot apply {}", file.display()))?;
            true
        }
        None => false,
    };
    let show_plan = !out.quiet && !args.json;
    if !plan.blockers.is_empty() {
        let shown = if show_plan {
            out.plan(&plan);
            super::plan::Shown::Text
        } else {
            super::plan::Shown::Not
        };
        bail!(super::plan::blocked_message(&plan, shown));
    }
    if plan.is_empty() {
        remove_leftovers(&ws, out);
        let text = if targets.is_empty() {
            "No changes. The store matches the manifest.\n"
        } else {
            "No changes. The store matches the manifest, and the servers hold it.\n"
        };
        if args.json {
            out.note(text.trim_end());
            out.result(&json_document(
                &apply::Report::default(),
                &[],
                commit.as_ref(),
            ));
        } else {
            out.result(text);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if show_plan {
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
    for w in sources.warnings() {
        out.warning(&w);
    }
    // Shown and confirmed: what apply needs of the plan from here on is
    // each action's object and kind, the keys, warnings and the live part.
    // The claims of both sides and the effects (over 1 KB a user) go
    // before apply's memory-hungry steps.
    drop_shown_claims(&mut plan);
    let mut deploy = (!targets.is_empty()).then(|| apply::Deploy {
        targets: targets.clone(),
        sessions,
        creds: args.deploy.creds.clone(),
        prune: args.prune,
        bar: crate::deploy::report::Progress::new(!out.quiet),
        outcomes: Vec::new(),
    });
    let report = apply::apply_and_deploy(
        &ws,
        &plan,
        state.0.take(),
        &sources,
        now,
        &mut CliProgress::new(out, bars_wanted(out.quiet, args.json)),
        deploy.as_mut(),
        commit.as_mut(),
    )?;
    remove_leftovers(&ws, out);
    if let Some(e) = &report.cache_note {
        out.note(&format!(
            "could not remember the signatures of the JWTs written ({e}); the next plan verifies them again"
        ));
    }
    report.bundle_cache_notes.iter().for_each(|n| out.note(n));
    let mut summary = format!(
        "Apply complete: {} key{} generated, {} JWT{} written, {} deleted.",
        report.keys_generated,
        if report.keys_generated == 1 { "" } else { "s" },
        report.jwts_written,
        if report.jwts_written == 1 { "" } else { "s" },
        report.jwts_deleted
    );
    if report.seeds_resealed + report.seeds_removed > 0 {
        summary.push_str(&format!(
            " Vault: {} seed{} re-sealed, {} unused seed file{} removed.",
            report.seeds_resealed,
            if report.seeds_resealed == 1 { "" } else { "s" },
            report.seeds_removed,
            if report.seeds_removed == 1 { "" } else { "s" },
        ));
    }
    if !show_plan {
        // The plan, which carries it, was not shown.
        for w in plan
            .warnings
            .iter()
            .filter(|w| matches!(w, crate::plan::Warning::RecipientRemoved { .. }))
        {
            out.warning(&w.to_string());
        }
    }
    let outcomes = deploy.map(|d| d.outcomes).unwrap_or_default();
    for o in &outcomes {
        for line in o.lines() {
            out.note(&line);
        }
    }
    if args.json {
        out.note(&summary);
        out.result(&json_document(&report, &outcomes, commit.as_ref()));
    } else {
        out.result(&format!("{summary}\n"));
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok())
        .map(deploy_failure)
        .collect();
    if !failed.is_empty() {
        bail!(
            "{}\n  = help: the store is written; `natsform apply` again pushes what is missing once the servers are fixed",
            failed.join("\n")
        );
    }
    if !outcomes.is_empty() {
        let pushed: usize = outcomes.iter().map(|o| o.accounts.len()).sum();
        out.note(&format!(
            "Deployed: {pushed} account change{} acknowledged by the servers.",
            if pushed == 1 { "" } else { "s" }
        ));
    }
    // The process ends now: the workspace and the plan (memory only: no
    // file, lock or cache depends on their drop, and neither holds a seed)
    // are left for the OS instead of being freed object by object. The key
    // pairs were dropped (and zeroed) inside `apply_and_deploy`.
    std::mem::forget(ws);
    std::mem::forget(plan);
    Ok(ExitCode::SUCCESS)
}

/// Frees what only the views of a plan read: both sides' claims of every
/// action and the effects.
fn drop_shown_claims(plan: &mut crate::plan::Plan) {
    for action in &mut plan.actions {
        action.before = None;
        action.after = None;
    }
    plan.effects = Vec::new();
}

/// The error of an operator whose push did not fully succeed: each
/// account a server rejected (with the reason) or too few acknowledged.
fn deploy_failure(o: &crate::deploy::PushOutcome) -> String {
    let parts = o.failures();
    format!(
        "the push to the servers of operator {} failed for {} account{}:\n  - {}",
        o.operator,
        parts.len(),
        if parts.len() == 1 { "" } else { "s" },
        parts.join("\n  - ")
    )
}

/// `apply --json`: what apply wrote and what each server said; with
/// `--commit`, the id of the commit made (`null` when none was).
fn json_document(
    report: &apply::Report,
    outcomes: &[crate::deploy::PushOutcome],
    commit: Option<&apply::commit::Commit>,
) -> String {
    let mut doc = serde_json::json!({
        "format_version": 1,
        "store": {
            "keys_generated": report.keys_generated,
            "jwts_written": report.jwts_written,
            "jwts_deleted": report.jwts_deleted,
            "lock_changed": report.lock_changed,
        },
        "deploy": outcomes.iter().map(|o| o.json()).collect::<Vec<_>>(),
        "ok": outcomes.iter().all(|o| o.ok()),
    });
    if report.seeds_resealed + report.seeds_removed > 0 {
        doc["store"]["seeds_resealed"] = report.seeds_resealed.into();
        doc["store"]["seeds_removed"] = report.seeds_removed.into();
    }
    if let Some(c) = commit {
        doc["commit"] = c
            .made
            .as_ref()
            .map_or(serde_json::Value::Null, |m| m.id.clone().into());
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Finishes the store writes an interrupted apply left in its journal
/// (`crate::journal`), saying so. These complete an earlier run's phase,
/// whose seeds and lock are already written: they come before this run
/// reads anything, `--commit`'s checks included.
fn finish_interrupted(manifest: &Path, out: &Output) -> anyhow::Result<()> {
    let base = crate::runlock::project_dir(manifest);
    let shown = base.join(crate::journal::JOURNAL_FILE);
    match crate::journal::finish(&base)
        .with_context(|| "finishing the store writes of an interrupted apply")?
    {
        crate::journal::Finished::Nothing => {}
        crate::journal::Finished::Discarded => out.note(&format!(
            "{} was not a whole journal (an apply stopped before it was written, or it was altered); removed unused",
            shown.display()
        )),
        crate::journal::Finished::Stale => out.note(&format!(
            "{} was written beside another natsform.lock (the project changed since: another branch, a reset); removed unused",
            shown.display()
        )),
        crate::journal::Finished::Rewritten(n) => out.note(&format!(
            "an interrupted apply was rewriting store files; {n} were finished from its journal"
        )),
    }
    Ok(())
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

/// Work of at least this many items (JWTs to sign or write) gets a bar.
const BAR_MIN: usize = 1000;

/// Whether apply may show bars: on a terminal (stderr), never with
/// `--quiet` or `--json`, never in a pipe.
fn bars_wanted(quiet: bool, json: bool) -> bool {
    use std::io::IsTerminal;
    !quiet && !json && std::io::stderr().is_terminal()
}

/// apply's progress on the command line: each line a note (stderr, not
/// with `--quiet`); long work ([`BAR_MIN`] items or more) a bar, when
/// bars are wanted ([`bars_wanted`]). Lines printed while a bar is shown
/// go above it.
struct CliProgress<'a> {
    out: &'a Output,
    bars: bool,
    /// Where a bar draws: stderr (tests: hidden).
    target: fn() -> indicatif::ProgressDrawTarget,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> CliProgress<'a> {
    fn new(out: &'a Output, bars: bool) -> Self {
        CliProgress {
            out,
            bars,
            target: indicatif::ProgressDrawTarget::stderr,
            bar: None,
        }
    }
}

impl apply::Progress for CliProgress<'_> {
    fn line(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.out.note(text)),
            None => self.out.note(text),
        }
    }

    fn start(&mut self, what: &str, total: usize) {
        self.finish();
        if self.bars && total >= BAR_MIN {
            let bar = indicatif::ProgressBar::with_draw_target(Some(total as u64), (self.target)());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            self.bar = Some(bar);
        }
    }

    fn inc(&mut self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A desired state kept for apply: freed on another thread whichever way
/// the run ends (no change, a refusal, a cancelled prompt), as every
/// desired state is (100,000 users: about 0.05 s).
struct Elsewhere(Option<crate::plan::DesiredState>);

impl Drop for Elsewhere {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            crate::workspace::drop_elsewhere(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Progress;

    fn quiet_output() -> Output {
        let cli = <super::super::Cli as clap::Parser>::parse_from(["natsform", "-q", "plan"]);
        Output::new(&cli)
    }

    #[test]
    fn a_bar_only_for_long_work_when_bars_are_wanted() {
        let out = quiet_output();
        let mut p = CliProgress::new(&out, true);
        p.target = indicatif::ProgressDrawTarget::hidden;
        p.start("Signing JWTs", BAR_MIN - 1);
        assert!(p.bar.is_none());
        p.start("Signing JWTs", BAR_MIN);
        let bar = p.bar.clone().expect("a bar for long work");
        assert_eq!(bar.length(), Some(BAR_MIN as u64));
        assert_eq!(bar.message(), "Signing JWTs");
        p.inc(600);
        p.inc(400);
        assert_eq!(bar.position(), BAR_MIN as u64);
        p.line("a note in between");
        p.start("Writing JWTs", 5000);
        assert!(bar.is_finished(), "the previous bar is cleared first");
        assert_eq!(p.bar.as_ref().map(|b| b.position()), Some(0));
        p.finish();
        assert!(p.bar.is_none());
        let mut p = CliProgress::new(&out, false);
        p.start("Signing JWTs", 1_000_000);
        assert!(p.bar.is_none(), "no bar when bars are not wanted");
    }

    #[test]
    fn bars_are_never_wanted_quiet_or_as_json() {
        assert!(!bars_wanted(true, false));
        assert!(!bars_wanted(false, true));
        // `cargo test` captures stderr, or it is a terminal: either way the
        // answer follows is_terminal.
        use std::io::IsTerminal;
        assert_eq!(bars_wanted(false, false), std::io::stderr().is_terminal());
    }
}
