//! Reading a manifest file (TOML or YAML) into the model, with positions.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::diagnostic::{Diagnostic, ManifestErrors};
use super::model::Manifest;
use super::spans::SourceMap;

/// The two manifest syntaxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

/// A parsed manifest with what is needed to point at its lines.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    pub format: Format,
    pub text: String,
    pub manifest: Manifest,
    /// Key positions, computed on first use: only errors need them, and
    /// for a manifest of 100,000 users they cost as much as parsing.
    spans: OnceLock<SourceMap>,
}

impl Loaded {
    /// Directory relative paths in the manifest are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Where each key of the manifest is.
    pub fn spans(&self) -> &SourceMap {
        self.spans.get_or_init(|| match self.format {
            Format::Toml => SourceMap::from_toml(&self.text),
            Format::Yaml => SourceMap::from_yaml(&self.text),
        })
    }

    /// A diagnostic pointing at the key `path` (or its nearest known parent).
    pub fn diagnostic<S: AsRef<str>>(
        &self,
        path: &[S],
        address: Option<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let line = self.spans().line_of(path);
        Diagnostic {
            file: self.path.display().to_string(),
            line,
            source_line: line
                .and_then(|l| self.text.lines().nth(l - 1))
                .map(str::to_string),
            address,
            message: message.into(),
            help,
        }
    }
}

/// Picks the syntax from the file extension.
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Some(Format::Toml),
        Some("yaml") | Some("yml") => Some(Format::Yaml),
        _ => None,
    }
}

/// Reads and parses a manifest file; errors carry file and line.
pub fn load(path: &Path) -> Result<Loaded, ManifestErrors> {
    let file = path.display().to_string();
    let plain = |message: String, help: Option<String>| {
        ManifestErrors(vec![Diagnostic {
            file: file.clone(),
            line: None,
            source_line: None,
            address: None,
            message,
            help,
        }])
    };
    let format = format_of(path).ok_or_else(|| {
        plain(
            "unknown manifest format".into(),
            Some("name the manifest natsform.toml or natsform.yaml".into()),
        )
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        plain(
            format!("cannot read the manifest: {e}"),
            Some(
                "pass the manifest with -f/--manifest, or run `natsform init` to create one".into(),
            ),
        )
    })?;
    parse(path, format, text)
}

/// Parses manifest text already read from `path`.
pub fn parse(path: &Path, format: Format, text: String) -> Result<Loaded, ManifestErrors> {
    let file = path.display().to_string();
    let at_line = |line: Option<usize>, message: String| {
        let (message, help) = split_hint(message);
        Diagnostic {
            file: file.clone(),
            line,
            source_line: line
                .and_then(|l| text.lines().nth(l.saturating_sub(1)))
                .map(str::to_string),
            address: None,
            message,
            help,
        }
    };
    let mut duplicates = Vec::new();
    let manifest = match format {
        Format::Toml => match toml::from_str::<Manifest>(&text) {
            // The TOML parser refuses duplicate keys itself.
            Ok(m) => m,
            Err(e) => {
                let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
                return Err(ManifestErrors(vec![at_line(
                    line,
                    e.message().trim().to_string(),
                )]));
            }
        },
        Format::Yaml => match serde_yaml::from_str::<Manifest>(&text) {
            // serde_yaml keeps the last of two equal keys: walk the events
            // to find duplicates.
            Ok(m) => {
                duplicates = SourceMap::yaml_duplicates(&text);
                m
            }
            Err(e) => {
                let line = e.location().map(|l| l.line());
                let msg = strip_yaml_position(&e.to_string());
                return Err(ManifestErrors(vec![at_line(line, msg)]));
            }
        },
    };
    let loaded = Loaded {
        path: path.to_path_buf(),
        format,
        text,
        manifest,
        spans: OnceLock::new(),
    };
    if !duplicates.is_empty() {
        let diags = duplicates
            .iter()
            .map(|(p, line)| Diagnostic {
                file: file.clone(),
                line: Some(*line),
                source_line: loaded.text.lines().nth(line - 1).map(str::to_string),
                address: None,
                message: format!("duplicate key `{}`", p.join(".")),
                help: Some("each name may appear once; remove or rename one of them".into()),
            })
            .collect();
        return Err(ManifestErrors(diags));
    }
    Ok(loaded)
}

/// serde_yaml appends " at line L column C"; the diagnostic shows the line itself.
fn strip_yaml_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Our value parsers (sizes, limits, times) end their message with
/// `: write …`; that part is the fix.
fn split_hint(message: String) -> (String, Option<String>) {
    if let Some((what, how)) = message.split_once(": write ") {
        return (what.to_string(), Some(format!("write {how}")));
    }
    let help = hint_for(&message);
    (message, help)
}

fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown variant") {
        Some("use one of the values listed; they are case-sensitive".into())
    } else if message.contains("unknown field") {
        Some("check the spelling against the manifest reference in README.md".into())
    } else if message.contains("duplicate") {
        Some("each name may appear once; remove or rename one of them".into())
    } else {
        None
    }
}
