//! `natsform validate`: check the manifest and nothing else.

use std::path::Path;
use std::process::ExitCode;

use super::Output;
use crate::manifest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON document: `{"format_version": 1, "valid": true,
    /// "operators", "accounts", "users"}`, or the JSON error document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let loaded = manifest::load(path)?;
    manifest::validate(&loaded)?;
    let m = &loaded.manifest;
    let accounts: usize = m.operators.values().map(|o| o.accounts.len()).sum();
    let users: usize = m
        .operators
        .values()
        .flat_map(|o| o.accounts.values())
        .map(|a| a.users.len())
        .sum();
    if args.json {
        let doc = serde_json::json!({
            "format_version": 1,
            "valid": true,
            "operators": m.operators.len(),
            "accounts": accounts,
            "users": users,
        });
        out.result(&format!("{doc:#}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    out.result(&format!(
        "{} is valid: {} operator{}, {} account{}, {} user{}.\n",
        path.display(),
        m.operators.len(),
        plural(m.operators.len()),
        accounts,
        plural(accounts),
        users,
        plural(users)
    ));
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
