//! age identities used to decrypt the seed vault.
//!
//! Sources, in precedence order (the first one present is used, the others
//! are ignored, so an explicit flag always beats the environment, and the
//! environment beats files found by default):
//! 1. `--identity FILE`, possibly repeated;
//! 2. `NATSFORM_AGE_IDENTITY` — path of an identity file;
//! 3. `NATSFORM_AGE_KEY` — the identities themselves (for CI secrets);
//! 4. `SOPS_AGE_KEY_FILE`, then 5. `SOPS_AGE_KEY` — sops's two variables;
//! 6. `$XDG_CONFIG_HOME/natsform/identity.txt` (default
//!    `~/.config/natsform/identity.txt`, the file `natsform init` writes);
//! 7. `$XDG_CONFIG_HOME/sops/age/keys.txt` (sops's default file).
//!
//! An empty variable counts as unset; a default file counts when it exists
//! (one that cannot be read or parsed is an error, never skipped).
//!
//! File formats follow rage: an age identity file (`AGE-SECRET-KEY-1…`
//! lines, `#` comments) or an unencrypted OpenSSH private key. Passphrase-
//! protected keys are refused with a clear message, because natsform runs in
//! pipelines where nobody can answer a prompt.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age::ssh::UnsupportedKey;
use zeroize::Zeroizing;

use crate::keys::error::{
    KeysError, Result, ENV_IDENTITY_FILE, ENV_IDENTITY_KEY, ENV_SOPS_KEY, ENV_SOPS_KEY_FILE,
};

/// Where identities may come from; built from flags and the environment by
/// the CLI, or directly by tests (so tests never mutate process env).
#[derive(Default)]
pub struct IdentitySources {
    /// `--identity FILE` values, in command-line order.
    pub paths: Vec<PathBuf>,
    /// Value of `NATSFORM_AGE_IDENTITY`.
    pub env_path: Option<OsString>,
    /// Value of `NATSFORM_AGE_KEY`.
    pub env_key: Option<SecretString>,
    /// Value of `SOPS_AGE_KEY_FILE`.
    pub sops_path: Option<OsString>,
    /// Value of `SOPS_AGE_KEY`.
    pub sops_key: Option<SecretString>,
    /// The identity files looked for when no flag or variable names one,
    /// in order: natsform's (the one `init` writes), then sops's.
    pub default_files: Vec<PathBuf>,
}

/// Where `natsform init` writes its identity and natsform looks first by
/// default: `$XDG_CONFIG_HOME/natsform/identity.txt`, else
/// `$HOME/.config/natsform/identity.txt`. `None` without either variable.
pub fn default_identity_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("natsform").join("identity.txt"))
}

/// sops's default age key file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
/// `$HOME/.config/sops/age/keys.txt`.
pub fn sops_identity_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("sops").join("age").join("keys.txt"))
}

fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config")),
    }
}

fn secret_var(name: &str) -> Option<SecretString> {
    // A non-UTF-8 value cannot be an identity; lossy conversion keeps it so
    // that loading reports it as a bad line.
    std::env::var_os(name).map(|v| {
        SecretString::from(
            v.into_string()
                .unwrap_or_else(|v| v.to_string_lossy().into_owned()),
        )
    })
}

/// The source [`Identities::load`] uses: the first one present.
enum Chosen<'a> {
    Flags(&'a [PathBuf]),
    File(&'a Path, &'static str),
    Key(&'a SecretString, &'static str),
    None(Vec<String>),
}

impl IdentitySources {
    /// `paths` from `--identity` plus the environment variables and the
    /// default files. Empty variables count as unset (CI systems often
    /// export empty secrets).
    pub fn from_env(paths: Vec<PathBuf>) -> IdentitySources {
        IdentitySources {
            paths,
            env_path: std::env::var_os(ENV_IDENTITY_FILE),
            env_key: secret_var(ENV_IDENTITY_KEY),
            sops_path: std::env::var_os(ENV_SOPS_KEY_FILE),
            sops_key: secret_var(ENV_SOPS_KEY),
            default_files: default_identity_file()
                .into_iter()
                .chain(sops_identity_file())
                .collect(),
        }
    }

    /// The highest-precedence source present, or every place looked at.
    fn choose(&self) -> Chosen<'_> {
        let path = |v: &Option<OsString>| v.as_ref().filter(|p| !p.is_empty()).cloned();
        let key = |v: &Option<SecretString>| {
            v.as_ref()
                .filter(|k| !k.expose_secret().trim().is_empty())
                .is_some()
        };
        if !self.paths.is_empty() {
            return Chosen::Flags(&self.paths);
        }
        if path(&self.env_path).is_some() {
            return Chosen::File(
                Path::new(self.env_path.as_ref().unwrap()),
                ENV_IDENTITY_FILE,
            );
        }
        if key(&self.env_key) {
            return Chosen::Key(self.env_key.as_ref().unwrap(), ENV_IDENTITY_KEY);
        }
        if path(&self.sops_path).is_some() {
            return Chosen::File(
                Path::new(self.sops_path.as_ref().unwrap()),
                ENV_SOPS_KEY_FILE,
            );
        }
        if key(&self.sops_key) {
            return Chosen::Key(self.sops_key.as_ref().unwrap(), ENV_SOPS_KEY);
        }
        for (i, file) in self.default_files.iter().enumerate() {
            // Present means anything at that name (a link into a dotfiles
            // repository is followed: the home directory is not the
            // project); one that cannot be read is an error, never skipped.
            if std::fs::symlink_metadata(file).is_ok() {
                return Chosen::File(
                    file,
                    if i == 0 {
                        "natsform's default"
                    } else {
                        "sops's default"
                    },
                );
            }
        }
        let mut looked = vec![
            "--identity FILE                  (not given)".to_string(),
            format!("${ENV_IDENTITY_FILE}           (unset or empty)"),
            format!("${ENV_IDENTITY_KEY}                (unset or empty)"),
            format!("${ENV_SOPS_KEY_FILE}               (unset or empty)"),
            format!("${ENV_SOPS_KEY}                    (unset or empty)"),
        ];
        if self.default_files.is_empty() {
            looked.push(
                "no default identity file: neither $XDG_CONFIG_HOME nor $HOME is set".to_string(),
            );
        }
        for (i, file) in self.default_files.iter().enumerate() {
            let what = if i == 0 {
                "no such file; `natsform init` writes it"
            } else {
                "no such file; sops's default"
            };
            looked.push(format!(
                "{}  ({what})",
                crate::safepath::escape_line(&file.display().to_string())
            ));
        }
        Chosen::None(looked)
    }
}

impl IdentitySources {
    /// Warnings about the identity files the highest-precedence source
    /// names: one for each file that group or others can read (see
    /// [`permission_warning`]). Reads only file modes, never the keys; for
    /// a command to print before it uses the identities.
    pub fn warnings(&self) -> Vec<String> {
        let files: Vec<(&Path, &str)> = match self.choose() {
            Chosen::Flags(paths) => paths.iter().map(|p| (p.as_path(), "--identity")).collect(),
            Chosen::File(p, flag) => vec![(p, flag)],
            Chosen::Key(..) | Chosen::None(_) => Vec::new(),
        };
        files
            .into_iter()
            .filter_map(|(path, flag)| permission_warning(path, flag))
            .collect()
    }
}

/// A warning when the identity file at `path` can be read by group or
/// others (Unix mode & 0o077). ssh refuses such private keys; natsform
/// uses them, since CI systems often check files out with a umask of 022,
/// but says how to fix it. `None` elsewhere, and when the mode is private
/// or cannot be read (loading reports that).
pub fn permission_warning(path: &Path, flag: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "identity file {} ({flag}) can be read by other users (mode {mode:04o}); \
                 anyone who can read it can decrypt every seed in the vault\n  = help: run \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, flag);
        None
    }
}

impl fmt::Debug for IdentitySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySources")
            .field("paths", &self.paths)
            .field("env_path", &self.env_path)
            .field("env_key", &self.env_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Loaded identities, ready to decrypt. Holds secret keys; its `Debug`
/// shows only where they came from.
pub struct Identities {
    list: Vec<Box<dyn age::Identity + Send + Sync>>,
    origins: Vec<String>,
    warnings: Vec<String>,
}

impl Identities {
    /// Loads identities from the highest-precedence source present.
    ///
    /// Errors: [`KeysError::NoIdentity`] (listing every place looked at)
    /// when no source is present; otherwise
    /// the first file or line that cannot be used, named by file and line
    /// number, never by content.
    pub fn load(sources: &IdentitySources) -> Result<Identities> {
        let mut ids = Identities {
            list: Vec::new(),
            origins: Vec::new(),
            warnings: Vec::new(),
        };
        match sources.choose() {
            Chosen::Flags(paths) => {
                for path in paths {
                    ids.add_file(path, "--identity")?;
                }
            }
            Chosen::File(path, flag) => ids.add_file(path, flag)?,
            Chosen::Key(key, var) => {
                let origin = var.to_string();
                ids.add_lines(key.expose_secret(), &origin)?;
                ids.origins.push(origin);
            }
            Chosen::None(looked) => return Err(KeysError::NoIdentity { looked }),
        }
        Ok(ids)
    }

    /// Where the identities came from, e.g. `identity file k.txt (--identity)`.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Warnings about the files the identities came from (a file others
    /// can read); the caller shows them to the user.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of identities loaded.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no identity was loaded (never true after a successful `load`).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The identities in the form `age::Decryptor` takes.
    pub(crate) fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.list.iter().map(|i| i.as_ref() as &dyn age::Identity)
    }

    fn add_file(&mut self, path: &Path, flag: &str) -> Result<()> {
        let origin = format!("identity file {} ({flag})", path.display());
        let bytes =
            Zeroizing::new(
                std::fs::read(path).map_err(|source| KeysError::IdentityRead {
                    path: path.to_path_buf(),
                    origin: flag.to_string(),
                    source,
                })?,
            );
        let unsupported = |reason: &str| KeysError::IdentityUnsupported {
            origin: origin.clone(),
            reason: reason.to_string(),
        };
        if bytes.starts_with(b"age-encryption.org/") || bytes.starts_with(b"-----BEGIN AGE") {
            return Err(unsupported(
                "passphrase-protected identity files are not supported (natsform never prompts); \
                 decrypt it into a secret store and pass it via NATSFORM_AGE_KEY",
            ));
        }
        match age::ssh::Identity::from_buffer(&bytes[..], Some(path.display().to_string())) {
            Ok(age::ssh::Identity::Unencrypted(key)) => {
                self.list
                    .push(Box::new(age::ssh::Identity::Unencrypted(key)));
            }
            Ok(age::ssh::Identity::Encrypted(_)) => {
                return Err(unsupported(
                    "this SSH private key is passphrase-protected, and natsform never prompts; \
                     use an age identity or an unencrypted key kept in a secret store",
                ))
            }
            Ok(age::ssh::Identity::Unsupported(k)) => return Err(unsupported(&ssh_unsupported(k))),
            // Not an SSH key: read it as an age identity file.
            Err(_) => {
                let text = std::str::from_utf8(&bytes).map_err(|e| KeysError::IdentityParse {
                    origin: origin.clone(),
                    line: 1 + bytes[..e.valid_up_to()]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count(),
                })?;
                self.add_lines(text, &origin)?;
            }
        }
        self.origins.push(origin);
        self.warnings.extend(permission_warning(path, flag));
        Ok(())
    }

    fn add_lines(&mut self, text: &str, origin: &str) -> Result<()> {
        let before = self.list.len();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match age::x25519::Identity::from_str(line) {
                Ok(id) => self.list.push(Box::new(id)),
                Err(_) if line.starts_with("age1") || line.starts_with("ssh-") => {
                    return Err(KeysError::IdentityUnsupported {
                        origin: origin.to_string(),
                        reason: format!(
                            "line {} is a public key (a recipient), not an identity; give the private key instead",
                            i + 1
                        ),
                    })
                }
                Err(_) => {
                    return Err(KeysError::IdentityParse {
                        origin: origin.to_string(),
                        line: i + 1,
                    })
                }
            }
        }
        if self.list.len() == before {
            return Err(KeysError::IdentityEmpty {
                origin: origin.to_string(),
            });
        }
        Ok(())
    }
}

fn ssh_unsupported(k: UnsupportedKey) -> String {
    match k {
        UnsupportedKey::EncryptedPem => {
            "this is a passphrase-protected PEM key; natsform never prompts".to_string()
        }
        UnsupportedKey::EncryptedSsh(cipher) => {
            format!("this SSH key is encrypted with {cipher}; natsform never prompts")
        }
        UnsupportedKey::Hardware(kind) => {
            format!("{kind} keys live on a hardware token and cannot be used here")
        }
        UnsupportedKey::Type(kind) => format!("SSH key type {kind} is not supported by age"),
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.list.len())
            .field("origins", &self.origins)
            .finish()
    }
}
