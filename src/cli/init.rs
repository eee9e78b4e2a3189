//! `natsform init`: a starter manifest and a real age identity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use age::secrecy::ExposeSecret;
use anyhow::{bail, Context};

use super::Output;
use crate::fsutil::write_atomic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Operator name for the starter manifest.
    #[arg(long, default_value = "main")]
    pub operator: String,
    /// Where to keep the new age identity (default:
    /// $XDG_CONFIG_HOME/natsform/identity.txt, i.e. ~/.config/natsform/identity.txt).
    #[arg(long, value_name = "FILE")]
    pub identity_file: Option<PathBuf>,
    /// Manifest syntax to write.
    #[arg(long, value_enum, default_value_t = Syntax::Toml)]
    pub format: Syntax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Syntax {
    Toml,
    Yaml,
}

pub fn run(args: Args, manifest: Option<PathBuf>, out: &Output) -> anyhow::Result<ExitCode> {
    let path = manifest.unwrap_or_else(|| {
        PathBuf::from(match args.format {
            Syntax::Toml => "natsform.toml",
            Syntax::Yaml => "natsform.yaml",
        })
    });
    if path.exists() {
        bail!(
            "{} already exists; init never overwrites a manifest",
            path.display()
        );
    }
    if !args
        .operator
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || args.operator.is_empty()
    {
        bail!(
            "operator name `{}` should use letters, digits, `-` and `_`",
            args.operator
        );
    }
    let id_path = match args.identity_file {
        Some(p) => p,
        None => default_identity_path()?,
    };
    let (recipient, created) = identity(&id_path)?;
    let text = match args.format {
        Syntax::Toml => toml_manifest(&args.operator, &recipient),
        Syntax::Yaml => yaml_manifest(&args.operator, &recipient),
    };
    write_atomic(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    out.result(&format!("Created {}.\n", path.display()));
    if created {
        out.result(&format!(
            "Created a new age identity at {} (mode 0600).\n  public key: {recipient}\n\n\
             Back it up now (a password manager or an offline copy): without it, the seeds\n\
             natsform stores in the vault cannot be decrypted, and keys cannot be re-signed.\n\
             Give CI its own identity and add its public key to secrets.recipients.\n",
            id_path.display()
        ));
    } else {
        out.result(&format!(
            "Using the existing age identity at {} ({recipient}).\n",
            id_path.display()
        ));
    }
    out.result(&format!(
        "\nNext: `natsform plan` to review, then `NATSFORM_AGE_IDENTITY={} natsform apply`.\n",
        id_path.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn default_identity_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config"),
            None => bail!("cannot find a home directory for the identity; pass --identity-file"),
        },
    };
    Ok(base.join("natsform").join("identity.txt"))
}

/// Reuses the identity at `path` or creates one; returns its public key.
fn identity(path: &Path) -> anyhow::Result<(String, bool)> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        {
            if let Ok(id) = line.parse::<age::x25519::Identity>() {
                return Ok((id.to_public().to_string(), false));
            }
        }
        bail!(
            "{} exists but holds no age X25519 identity; pass another --identity-file",
            path.display()
        );
    }
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let body = format!(
        "# natsform age identity: it decrypts the nkey seeds in natsform vaults.\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    );
    write_atomic(path, body.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((public, true))
}

fn toml_manifest(op: &str, recipient: &str) -> String {
    format!(
        r#"# natsform manifest: the desired NATS trust tree. Review changes with
# `natsform plan`; make them real with `natsform apply`.

[secrets]
# Who can decrypt the seeds in vault/: add teammates' and CI's public keys.
recipients = ["{recipient}"]

[operators.{op}]
signing_keys = ["ops-1"]
system_account = "SYS"
strict_signing_key_usage = true

[operators.{op}.accounts.SYS.signing_keys.admin]
[operators.{op}.accounts.SYS.users.sys]
signer = "admin"

[operators.{op}.accounts.app.signing_keys.main]

[operators.{op}.accounts.app.users.app]
signer = "main"
pub = {{ allow = ["app.>", "_INBOX.>"] }}
sub = {{ allow = ["app.>", "_INBOX.>"] }}
"#
    )
}

fn yaml_manifest(op: &str, recipient: &str) -> String {
    format!(
        r#"# natsform manifest: the desired NATS trust tree. Review changes with
# `natsform plan`; make them real with `natsform apply`.
secrets:
  # Who can decrypt the seeds in vault/: add teammates' and CI's public keys.
  recipients: ["{recipient}"]

operators:
  {op}:
    signing_keys: [ops-1]
    system_account: SYS
    strict_signing_key_usage: true
    accounts:
      SYS:
        signing_keys: {{admin: {{}}}}
        users:
          sys: {{signer: admin}}
      app:
        signing_keys: {{main: {{}}}}
        users:
          app:
            signer: main
            pub: {{allow: ["app.>", "_INBOX.>"]}}
            sub: {{allow: ["app.>", "_INBOX.>"]}}
"#
    )
}
