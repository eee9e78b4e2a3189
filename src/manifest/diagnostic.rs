//! Manifest errors that say what is wrong, where (file, line, object
//! address) and how to fix it.

use std::fmt;

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The manifest file as the user named it.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The text of that line, for display.
    pub source_line: Option<String>,
    /// Address of the object at fault, e.g. `user.O2/A/U`.
    pub address: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Added to the help of a diagnostic whose text held a secret.
pub const SECRET_HELP: &str = "the value looks like a secret (a seed or an age secret key) \
and is not shown: put the public key here (`nk -inkey SEEDFILE -pubout`, `age-keygen -y KEYFILE`), \
and rotate the secret if this file was ever shared or committed";

impl Diagnostic {
    /// The diagnostic with every seed and age secret key in its message,
    /// quoted line, address and help hidden ([`crate::redact`]); when
    /// something was hidden, the help says so and what to do.
    pub fn redacted(mut self) -> Diagnostic {
        use crate::redact::{contains_secret, redact_secrets};
        let mut found = false;
        let mut hide = |s: &mut String| {
            if contains_secret(s) {
                found = true;
                *s = redact_secrets(s).into_owned();
            }
        };
        hide(&mut self.message);
        hide(&mut self.file);
        if let Some(s) = self.source_line.as_mut() {
            hide(s);
        }
        if let Some(s) = self.address.as_mut() {
            hide(s);
        }
        if let Some(s) = self.help.as_mut() {
            hide(s);
        }
        // A secret written with escapes (`\u0053U…`) is not one to the scan
        // above, yet the line shows nearly all of it: not quoted at all.
        if self
            .source_line
            .as_deref()
            .is_some_and(|l| l.contains('\\') && contains_secret(&crate::redact::unescaped(l)))
        {
            self.source_line = None;
            found = true;
        }
        if found {
            self.help = Some(match self.help.take() {
                Some(h) => format!("{h}; {SECRET_HELP}"),
                None => SECRET_HELP.to_string(),
            });
        }
        self
    }

    fn holds_secret(&self) -> bool {
        use crate::redact::contains_secret;
        [
            Some(&self.message),
            Some(&self.file),
            self.source_line.as_ref(),
            self.address.as_ref(),
            self.help.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|s| contains_secret(s))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every constructor redacts; this keeps a diagnostic built some
        // other way from ever showing a secret.
        let hidden;
        let d = if self.holds_secret() {
            hidden = self.clone().redacted();
            &hidden
        } else {
            self
        };
        match &d.address {
            Some(a) => writeln!(f, "error: {a}: {}", d.message)?,
            None => writeln!(f, "error: {}", d.message)?,
        }
        match d.line {
            Some(line) => {
                let width = line.to_string().len();
                writeln!(f, "{:width$}--> {}:{line}", "", d.file)?;
                if let Some(src) = &d.source_line {
                    writeln!(f, "{:width$} |", "")?;
                    writeln!(f, "{line} | {}", quoted(src.trim_end()))?;
                    writeln!(f, "{:width$} |", "")?;
                }
                if let Some(help) = &d.help {
                    writeln!(f, "{:width$} = help: {help}", "")?;
                }
            }
            None => {
                writeln!(f, "  --> {}", d.file)?;
                if let Some(help) = &d.help {
                    writeln!(f, "   = help: {help}")?;
                }
            }
        }
        Ok(())
    }
}

/// Longest quoted source line, in characters: a one-line document of
/// megabytes must not be printed whole.
const MAX_QUOTED: usize = 200;

fn quoted(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(MAX_QUOTED) {
        None => line.into(),
        Some((cut, _)) => {
            format!("{} … (line cut at {MAX_QUOTED} characters)", &line[..cut]).into()
        }
    }
}

/// Every problem found in one manifest; nothing is written while any exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<Diagnostic>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "\n{n} error{} in {}; nothing was changed.",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|d| d.file.as_str())
                .unwrap_or("the manifest")
        )
    }
}

impl std::error::Error for ManifestErrors {}

/// "did you mean" for a misspelt name among `candidates`.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_in_every_part_and_the_help_says_why() {
        let seed = crate::keys::generate(crate::keys::KeyKind::User)
            .seed()
            .unwrap();
        let d = Diagnostic {
            file: "natsform.toml".into(),
            line: Some(3),
            source_line: Some(format!("public_key = \"{seed}\"")),
            address: Some("user.O/A/U".into()),
            message: format!("`{seed}` is not a user public key"),
            help: Some("use a public key".into()),
        };
        // Display hides it even when the diagnostic was built directly.
        let shown = d.to_string();
        assert!(!shown.contains(&seed[2..]), "{shown}");
        assert!(
            shown.contains("3 | public_key = \"SU…(seed; not shown)\""),
            "{shown}"
        );
        assert!(
            shown.contains("use a public key; the value looks like a secret"),
            "{shown}"
        );
        let r = d.redacted();
        assert!(!format!("{r:?}").contains(&seed[2..]));
        // Redacting twice changes nothing more.
        assert_eq!(r.clone().redacted(), r);
    }

    #[test]
    fn long_source_lines_are_cut() {
        let d = Diagnostic {
            file: "f.yaml".into(),
            line: Some(1),
            source_line: Some("x".repeat(10_000)),
            address: None,
            message: "m".into(),
            help: None,
        };
        let shown = d.to_string();
        assert!(shown.len() < 400, "{shown}");
        assert!(shown.contains("(line cut at 200 characters)"));
    }
}
