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
    // The project's .gitignore is checked before anything is written: one
    // that is a link or not a regular file stops init unchanged.
    let project_dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let gitignore = project_dir.join(".gitignore");
    let ignore_text = gitignore_text(&gitignore)?;
    let default_path = crate::keys::default_identity_file();
    let id_path = match args.identity_file {
        Some(p) => p,
        None => default_path.clone().ok_or_else(|| {
            anyhow::anyhow!("cannot find a home directory for the identity; pass --identity-file")
        })?,
    };
    let (recipient, created) = identity(&id_path)?;
    let text = match args.format {
        Syntax::Toml => toml_manifest(&args.operator, &recipient),
        Syntax::Yaml => yaml_manifest(&args.operator, &recipient),
    };
    write_atomic(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    out.result(&format!("Created {}.\n", path.display()));
    if let Some((text, verb)) = ignore_text {
        write_atomic(&gitignore, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", gitignore.display()))?;
        out.result(&format!(
            "{verb} {} (creds and natsform's temporary files stay out of git).\n",
            gitignore.display()
        ));
    }
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
    if default_path.as_deref() == Some(id_path.as_path()) {
        out.result(
            "\nNext: `natsform plan` to review, then `natsform apply` (it finds this identity by default).\n",
        );
    } else {
        out.result(&format!(
            "\nNext: `natsform plan` to review, then `NATSFORM_AGE_IDENTITY={} natsform apply`.\n",
            id_path.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// What init puts in the project's `.gitignore`: creds files hold seeds in
/// plaintext (`creds --out creds` inside the repository), and natsform's
/// run lock, temporary files (some hold a seed), import staging
/// directories and the store journal of an interrupted apply
/// (`crate::journal`) are never part of a commit.
pub(crate) const GITIGNORE_LINES: &[&str] = &[
    "creds/",
    "*.creds",
    ".natsform.run-lock",
    ".natsform-*.tmp",
    ".natsform-import-*",
    ".natsform-journal",
];

/// Largest `.gitignore` init reads to append to.
const MAX_GITIGNORE: u64 = 1 << 20;

/// The `.gitignore` to write, and whether it is new (`Wrote`) or an
/// existing one with the missing lines appended (`Updated`); `None` when
/// it already holds every line (it is then not rewritten).
fn gitignore_text(file: &Path) -> anyhow::Result<Option<(String, &'static str)>> {
    let shown = || crate::safepath::escape_line(&file.display().to_string()).into_owned();
    let existing = match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("reading {}: {e}", shown()),
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{} is a symbolic link; init does not follow links inside the project and changed nothing\n  = help: replace the link by a regular file",
            shown()
        ),
        Ok(m) if !m.is_file() => bail!("{} is not a regular file; init changed nothing", shown()),
        Ok(m) if m.len() > MAX_GITIGNORE => bail!(
            "{} is larger than {MAX_GITIGNORE} bytes; init changed nothing\n  = help: add these lines to it yourself: {}",
            shown(),
            GITIGNORE_LINES.join(" ")
        ),
        Ok(_) => Some(
            std::fs::read_to_string(file).with_context(|| format!("reading {}", shown()))?,
        ),
    };
    let Some(text) = existing else {
        let mut text =
            String::from("# natsform: creds files hold seeds; natsform's temporary files\n");
        for l in GITIGNORE_LINES {
            text.push_str(l);
            text.push('\n');
        }
        return Ok(Some((text, "Wrote")));
    };
    let have: std::collections::HashSet<&str> = text.lines().map(str::trim).collect();
    let missing: Vec<&str> = GITIGNORE_LINES
        .iter()
        .copied()
        .filter(|l| !have.contains(l))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut text = text.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# natsform: creds files hold seeds; natsform's temporary files\n");
    for l in missing {
        text.push_str(l);
        text.push('\n');
    }
    Ok(Some((text, "Updated")))
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
