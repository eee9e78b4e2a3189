//! `natsform show`: the trust tree as the store holds it. Everything shown
//! comes from the store, so control characters are escaped (`\u{1b}`).
//! `--format text` (the default) lists each object's claims; `--format dot`
//! and `--format mermaid` draw the tree as a picture, rendered by the pure
//! `crate::show` module.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use super::lock::{self, LockArgs};
use super::Output;
use crate::plan::effective;
use crate::plan::render_claims::{date, render, KeyNames};
use crate::runlock::Mode;
use crate::safepath::escape_line;
use crate::workspace::Workspace;

/// How `show` writes the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Each object with its claims, indented under its parent.
    #[default]
    Text,
    /// A Graphviz digraph: `natsform show --format dot | dot -Tsvg > trust.svg`.
    Dot,
    /// A Mermaid flowchart. GitHub draws it in Markdown: put the output
    /// between a line "```mermaid" and a line "```".
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only objects whose address contains this text (e.g. `account.O2/A`);
    /// pictures keep each object's operator and account.
    pub filter: Option<String>,
    /// `text`: the claims of each object. `dot` (Graphviz) and `mermaid`:
    /// the trust tree as a picture: operator, its signing keys, accounts,
    /// their signing keys and roles (permissions summarised), users; an
    /// arrow from the key that signed each JWT, and one from each importing
    /// account to its exporter. For GitHub, put the mermaid output between
    /// a line "```mermaid" and a line "```" in a Markdown file.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let held = lock::take(path, Mode::Shared, &args.lock, out)?;
    let ws = Workspace::open(path)?;
    // The store is read and decoded: showing it needs no lock.
    drop(held);
    let names: KeyNames = ws.lock.iter().map(|(a, k)| (k, a)).collect();
    if args.format != Format::Text {
        let graph = crate::show::build(&ws.existing, &names, args.filter.as_deref());
        let text = match args.format {
            Format::Dot => crate::show::dot::render(&graph),
            _ => crate::show::mermaid::render(&graph),
        };
        out.result(&text);
        return Ok(ExitCode::SUCCESS);
    }
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
                let _ = writeln!(text, "{pad}  issued: {}", date(d.issued_at));
                // The rendering escapes what the claims hold; lines are
                // escaped again in case a line breaks elsewhere.
                let mut shown = render(&d.value(), &names);
                if let Some(block) = effective_block(&ws, id, d, &names) {
                    shown.push_str(&block);
                }
                for line in shown.lines() {
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

/// A scoped user's effective permissions, as the plan shows them: the
/// template of the role (signing key) that signed the stored user JWT, as
/// the stored account JWT declares it, expanded for this user the way
/// nats-server expands it at connect time. `None` for anything but a user
/// signed by a scoped key of its stored, valid account.
fn effective_block(
    ws: &Workspace,
    id: &crate::tree::ObjectId,
    user: &crate::plan::existing::DecodedJwt,
    names: &KeyNames,
) -> Option<String> {
    id.user.as_ref()?;
    let account = ws.existing.get(&id.account_id()?)?.decoded.as_ref().ok()?;
    let account_claims = account.payload_value();
    let (role, template) = effective::scope_of(&account_claims, &user.issuer)?;
    let claims = user.payload_value();
    let ctx = effective::UserContext {
        name: claims
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default(),
        subject: &user.subject,
        account_name: account_claims
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default(),
        account_subject: &account.subject,
        user_tags: &effective::tags_of(&claims),
        account_tags: &effective::tags_of(&account_claims),
    };
    let doc = serde_json::json!({
        "effective_permissions": effective::block(role, &effective::expand(template, &ctx)),
    });
    Some(format!(
        "# as nats-server expands role `{role}` for this user:\n{}",
        render(&doc, names)
    ))
}
