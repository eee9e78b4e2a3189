//! The command line: clap definitions and one file per command. Commands
//! wire library calls together and print; they hold no domain logic.

mod apply;
mod creds;
mod creds_guard;
mod deploy;
mod import;
mod init;
mod lock;
mod output;
mod plan;
mod plan_base;
mod schema;
mod server_config;
mod show;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use output::Output;

const AFTER_HELP: &str = "\
Exit codes:
  0  success (with --detailed-exitcode: no changes)
  1  error: invalid manifest, unreadable store, missing identity, …, and
     usage errors (unknown flag, bad value): never 2
  2  plan --detailed-exitcode: there are changes (and only that)

Secrets: commands that sign or print creds need an age identity. The first
of these found is used:
  --identity FILE, $NATSFORM_AGE_IDENTITY (a file), $NATSFORM_AGE_KEY (the key),
  $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY,
  $XDG_CONFIG_HOME/natsform/identity.txt (~/.config/natsform/identity.txt,
  written by `natsform init`), $XDG_CONFIG_HOME/sops/age/keys.txt.
`plan` and `validate` never need one.";

/// How `apply --help` and `creds --help` name the identity sources.
pub(crate) const IDENTITY_HELP: &str = "\
Identity: the first found of --identity FILE, $NATSFORM_AGE_IDENTITY (a file),
$NATSFORM_AGE_KEY (the key), $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY,
$XDG_CONFIG_HOME/natsform/identity.txt (default ~/.config/natsform/identity.txt,
the file `natsform init` writes), $XDG_CONFIG_HOME/sops/age/keys.txt (sops's).";

/// The exit code of a usage error. clap's own is 2, which `plan
/// --detailed-exitcode` uses for "there are changes": a typo in a pipeline
/// must never read as a pending change, so usage errors exit like any
/// other error.
const USAGE_ERROR: u8 = 1;

/// Declarative NATS decentralized authentication: plan and apply operators,
/// accounts, signing keys and users from a manifest kept in git.
#[derive(Debug, Parser)]
#[command(name = "natsform", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// The manifest (default: natsform.toml or natsform.yaml in the current directory).
    #[arg(
        short = 'f',
        long = "manifest",
        global = true,
        env = "NATSFORM_MANIFEST"
    )]
    pub manifest: Option<PathBuf>,

    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Never use colour (same as --color never).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Print less: only errors and what was asked for.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a starter manifest and a new age identity.
    Init(init::Args),
    /// Check the manifest without touching anything.
    Validate(validate::Args),
    /// Show what apply would change. Needs no secrets.
    Plan(plan::Args),
    /// Sign and write keys, JWTs and the lock so the store matches the manifest.
    #[command(after_help = IDENTITY_HELP)]
    Apply(apply::Args),
    /// Print (or write) a user's creds file, as nsc writes it.
    #[command(after_help = IDENTITY_HELP)]
    Creds(creds::Args),
    /// Adopt an existing trust tree (`import nsc`) without re-keying.
    Import(import::Args),
    /// Show the trust tree in the store, like `nsc describe`; `--format dot`
    /// or `mermaid` draws it as a picture.
    Show(show::Args),
    /// Print the manifest's JSON Schema (for editors and CI).
    Schema(schema::Args),
    /// Print a nats-server config include that trusts an operator (operator
    /// JWT, system account, account resolver). Needs no secrets.
    #[command(after_help = server_config::AFTER_HELP)]
    ServerConfig(server_config::Args),
}

/// Parses the command line, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's message (what was wrong, the usage line, the hint)
            // as clap prints it; `--help` and `--version` go to stdout.
            let _ = e.print();
            if e.kind() == clap::error::ErrorKind::UnknownArgument {
                single_dash_hint(std::env::args_os().skip(1));
            }
            return if e.use_stderr() {
                ExitCode::from(USAGE_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = Output::new(&cli);
    match run(cli, &out) {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            ExitCode::from(1)
        }
    }
}

/// Terraform spells long flags with one dash (`-detailed-exitcode`); clap
/// then reports `-d` alone. Names the two-dash flag meant.
fn single_dash_hint(args: impl Iterator<Item = std::ffi::OsString>) {
    for arg in args {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        let Some(name) = arg.strip_prefix('-') else {
            continue;
        };
        let name = name.split('=').next().unwrap_or_default();
        if name.len() > 1
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        {
            eprintln!(
                "  = help: long flags take two dashes: `--{}`",
                crate::safepath::escape_line(name)
            );
        }
    }
}

fn run(cli: Cli, out: &Output) -> anyhow::Result<ExitCode> {
    let manifest = cli.manifest.clone();
    match cli.command {
        Command::Init(args) => init::run(args, manifest, out),
        Command::Validate(args) => validate::run(args, &manifest_path(manifest)?, out),
        Command::Plan(args) => plan::run(args, &manifest_path(manifest)?, out),
        Command::Apply(args) => apply::run(args, &manifest_path(manifest)?, out),
        Command::Creds(args) => creds::run(args, &manifest_path(manifest)?, out),
        Command::Import(args) => import::run(args, manifest, out),
        Command::Show(args) => show::run(args, &manifest_path(manifest)?, out),
        Command::Schema(args) => schema::run(args, out),
        Command::ServerConfig(args) => server_config::run(args, &manifest_path(manifest)?, out),
    }
}

/// The manifest named on the command line, or the one in the current directory.
fn manifest_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        check_manifest_file(&p)?;
        return Ok(p);
    }
    for name in ["natsform.toml", "natsform.yaml", "natsform.yml"] {
        let p = PathBuf::from(name);
        // A dangling link is found too, so that it is refused as a link.
        if std::fs::symlink_metadata(&p).is_ok() {
            check_manifest_file(&p)?;
            return Ok(p);
        }
    }
    anyhow::bail!("no manifest found: there is no natsform.toml or natsform.yaml here\n  = help: pass one with -f/--manifest, or run `natsform init` to create one")
}

/// Refuses a manifest that is a symbolic link or not a regular file. The
/// manifest is the branch's like everything else in the project: a link
/// named `natsform.toml` could point at any file of the machine (a secret,
/// `/proc/self/environ`), and a parse error would quote its first line in
/// the plan's output; a pipe or device would hang the run or fill memory.
/// A missing file is left to the loader, whose error says how to fix it.
fn check_manifest_file(path: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => anyhow::bail!(
            "the manifest {} is a symbolic link; natsform does not follow links inside the project\n  = help: replace the link by the manifest itself, or pass the real file with -f/--manifest (a link could make natsform read, and quote in its errors, a file outside the project)",
            crate::safepath::escape_line(&path.display().to_string())
        ),
        Ok(m) if !m.is_file() => anyhow::bail!(
            "the manifest {} is not a regular file\n  = help: pass the manifest file with -f/--manifest",
            crate::safepath::escape_line(&path.display().to_string())
        ),
        _ => Ok(()),
    }
}
