//! `natsform show`: the trust tree as the store holds it. Everything shown
//! comes from the store, so control characters are escaped (`\u{1b}`).

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use super::lock::{self, LockArgs};
use super::Output;
use crate::plan::render_claims::{render, KeyNames};
use crate::runlock::Mode;
use crate::safepath::escape_line;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only objects whose address contains this text (e.g. `account.O2/A`).
    pub filter: Option<String>,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let held = lock::take(path, Mode::Shared, &args.lock, out)?;
    let ws = Workspace::open(path)?;
    // The store is read and decoded: showing it needs no lock.
    drop(held);
    let names: KeyNames = ws.lock.iter().map(|(a, k)| (k, a)).collect();
    let mut text = String::new();
    for (id, existing) in &ws.existing {
        let address = id.address();
        if args.filter.as_deref().is_some_and(|f| !address.contains(f)) {
            continue;
        }
        let depth = if id.user.is_some() {
            2
        } else if id.account.is_some() {
            1
        } else {
            0
        };
        let pad = "  ".repeat(depth);
        let _ = writeln!(text, "{pad}{}", out.style().bold(&escape_line(&address)));
        match &existing.decoded {
            Ok(d) => {
                let issuer = names
                    .get(d.issuer.as_str())
                    .copied()
                    .unwrap_or(d.issuer.as_str());
                let _ = writeln!(text, "{pad}  issuer: {}", escape_line(issuer));
                // The rendering escapes what the claims hold; lines are
                // escaped again in case a line breaks elsewhere.
                for line in render(&d.value(), &names).lines() {
                    let _ = writeln!(text, "{pad}  {}", escape_line(line));
                }
            }
            Err(e) => {
                let _ = writeln!(text, "{pad}  INVALID: {}", escape_line(&e.to_string()));
            }
        }
    }
    if text.is_empty() {
        text.push_str("The store is empty; run `natsform apply`.\n");
    }
    out.result(&text);
    Ok(ExitCode::SUCCESS)
}
