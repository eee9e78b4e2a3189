//! `natsform plan`: what apply would change. Reads no secrets.

use std::path::Path;
use std::process::ExitCode;

use super::Output;
use crate::plan::render;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the plan as a versioned JSON document.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(path)?;
    let plan = ws.plan();
    if args.json {
        out.result(&render::json(&plan));
    } else {
        out.result(&render::text(&plan, out.style()));
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
