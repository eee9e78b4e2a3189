//! `natsform import nsc`: adopt an nsc store and keystore without re-keying.

use std::path::PathBuf;
use std::process::ExitCode;

use super::init::Syntax;
use super::Output;
use crate::import;
use crate::safepath::escape_line;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub from: From,
}

#[derive(Debug, clap::Subcommand)]
pub enum From {
    /// Import an nsc store and keystore: a manifest, a lock binding the
    /// existing public keys, a copy of the JWTs and the seeds encrypted to
    /// the recipients. The nsc directories are only read.
    Nsc(NscArgs),
}

#[derive(Debug, clap::Args)]
pub struct NscArgs {
    /// nsc's stores directory (one directory per operator). Default: nsc's,
    /// $XDG_DATA_HOME/nats/nsc/stores (~/.local/share/nats/nsc/stores), or
    /// the legacy ~/.nsc/nats.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// nsc's keystore. Default: $NKEYS_PATH, nsc's
    /// $XDG_DATA_HOME/nats/nsc/keys, or the legacy ~/.nkeys.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Who can decrypt the imported seeds, as age's -r: an age public key
    /// (age1…) or an SSH public key. Repeat for more.
    #[arg(
        short = 'r',
        long = "recipient",
        value_name = "RECIPIENT",
        required = true
    )]
    pub recipients: Vec<String>,
    /// Import even when some JWTs are signed by a key natsform keeps
    /// trusting but does not sign with (e.g. an account signed by the
    /// operator's own key while the operator has signing keys): the first
    /// apply re-signs them, same claims and keys.
    #[arg(long)]
    pub allow_resign: bool,
    /// Manifest syntax to write (ignored when -f names the file).
    #[arg(long, value_enum, default_value_t = Syntax::Toml)]
    pub format: Syntax,
}

pub fn run(args: Args, manifest: Option<PathBuf>, out: &Output) -> anyhow::Result<ExitCode> {
    let From::Nsc(args) = args.from;
    let manifest = manifest.unwrap_or_else(|| {
        PathBuf::from(match args.format {
            Syntax::Toml => "natsform.toml",
            Syntax::Yaml => "natsform.yaml",
        })
    });
    let env = |name: &str| std::env::var(name).ok();
    let dirs = import::locate(args.store, args.keys, &env)?;
    let now = crate::workspace::now();
    out.note(&format!(
        "Reading the nsc store {} ({}) and keystore {} ({}).",
        dirs.stores.display(),
        dirs.stores_origin,
        dirs.keys.display(),
        dirs.keys_origin
    ));
    let imported = import::read_nsc(&dirs)?;
    let written = import::write_project(
        &imported,
        &manifest,
        &args.recipients,
        now,
        args.allow_resign,
    )?;
    for n in &imported.notes {
        out.warning(n);
    }
    let (ops, accs, users) = imported.counts;
    out.result(&format!(
        "Imported {ops} operator{}, {accs} account{} and {users} user{} without re-keying:\n  {}  the manifest\n  {}  the lock (every key address bound to its existing public key)\n  {}/  {} JWT{}, copied byte for byte\n  {}/  {} seed{}, encrypted to {} recipient{}\n{}\n",
        plural(ops),
        plural(accs),
        plural(users),
        escape_line(&written.manifest.display().to_string()),
        escape_line(&written.lock.display().to_string()),
        escape_line(&written.store.display().to_string()),
        written.jwts,
        plural(written.jwts),
        escape_line(&written.vault.display().to_string()),
        written.seeds,
        plural(written.seeds),
        args.recipients.len(),
        plural(args.recipients.len()),
        if written.resigned.is_empty() {
            "`natsform plan` shows no changes; the creds users hold keep working."
        } else {
            "The creds users hold keep working."
        },
    ));
    if !written.resigned.is_empty() {
        out.warning(&format!(
            "the first apply re-signs {} (same claims and keys): natsform signs them with another trusted key",
            written.resigned.join(", ")
        ));
    }
    for b in &written.blockers {
        out.warning(b);
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
