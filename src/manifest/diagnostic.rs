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

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(a) => writeln!(f, "error: {a}: {}", self.message)?,
            None => writeln!(f, "error: {}", self.message)?,
        }
        match self.line {
            Some(line) => {
                let width = line.to_string().len();
                writeln!(f, "{:width$}--> {}:{line}", "", self.file)?;
                if let Some(src) = &self.source_line {
                    writeln!(f, "{:width$} |", "")?;
                    writeln!(f, "{line} | {}", src.trim_end())?;
                    writeln!(f, "{:width$} |", "")?;
                }
                if let Some(help) = &self.help {
                    writeln!(f, "{:width$} = help: {help}", "")?;
                }
            }
            None => {
                writeln!(f, "  --> {}", self.file)?;
                if let Some(help) = &self.help {
                    writeln!(f, "   = help: {help}")?;
                }
            }
        }
        Ok(())
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
