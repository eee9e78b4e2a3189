//! Reading a manifest file (TOML or YAML) into the model, with positions.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::diagnostic::{Diagnostic, ManifestErrors};
use super::explain::{address, explain, Explained};
use super::model::Manifest;
use super::remembered::{Lookup, ParsedCache, Used};
use super::spans::{toml_too_deep, yaml_flow_too_deep, SourceMap, MAX_DEPTH};
use crate::source::Source;

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
        crate::runlock::project_dir(&self.path)
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
        .redacted()
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
    load_from(&crate::source::WorkDir, path)
}

/// [`load`] from `src` (the working directory, or a git tree for
/// `plan --base --head`); messages name the file as `src` shows it.
pub fn load_from(src: &dyn Source, path: &Path) -> Result<Loaded, ManifestErrors> {
    let (shown, format, text) = read_text(src, path)?;
    parse(&shown, format, text)
}

/// [`load`], taking the model from `cache` when it holds one for exactly
/// this text (`plan` only: see `remembered`); with what the cache gave.
pub fn load_remembered(path: &Path, cache: &ParsedCache) -> (Result<Loaded, ManifestErrors>, Used) {
    let (shown, format, text) = match read_text(&crate::source::WorkDir, path) {
        Ok(read) => read,
        Err(e) => return (Err(e), Used::Miss),
    };
    match cache.load(format, &text) {
        Lookup::Hit(manifest) => {
            // This text parsed to this model before (every check `parse`
            // makes of the text is a function of it and passed then).
            let loaded = Loaded {
                path: shown,
                format,
                text,
                manifest: *manifest,
                spans: OnceLock::new(),
            };
            (Ok(loaded), Used::Hit)
        }
        Lookup::Miss => (parse(&shown, format, text), Used::Miss),
        Lookup::Ignored(note) => (parse(&shown, format, text), Used::Ignored(note)),
    }
}

/// The manifest's text, from `src`, with the name `src` shows and its syntax.
fn read_text(src: &dyn Source, path: &Path) -> Result<(PathBuf, Format, String), ManifestErrors> {
    let shown = src.shown(path);
    let file = shown.display().to_string();
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
    let cannot_read = |e: std::io::Error| {
        plain(
            format!("cannot read the manifest: {e}"),
            Some(
                "pass the manifest with -f/--manifest, or run `natsform init` to create one".into(),
            ),
        )
    };
    let Some(format) = format_of(path) else {
        // Say what the file is when it is a secret passed by mistake (its
        // content is never shown). Secret files are small: a larger file
        // is simply not a manifest.
        let bytes = match src.read_named(path, 64 * 1024) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Vec::new(),
            Err(e) => return Err(cannot_read(e)),
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(kind) = secret_file_kind(&text) {
            return Err(plain(
                format!("this is {kind}, not a manifest (its content is not shown)"),
                Some(SECRET_FILE_HELP.into()),
            ));
        }
        return Err(plain(
            "unknown manifest format".into(),
            Some("name the manifest natsform.toml or natsform.yaml".into()),
        ));
    };
    let bytes = match src.read_named(path, MAX_MANIFEST_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(plain(
                format!(
                    "the manifest is larger than {} MiB, the most natsform reads",
                    MAX_MANIFEST_BYTES / (1024 * 1024)
                ),
                Some("a manifest of 100,000 users is about 6 MiB: check that this is the manifest you meant; split the operators into several manifests if it really is".into()),
            ));
        }
        Err(e) => return Err(cannot_read(e)),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        plain(
            format!(
                "the manifest is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            Some("save the manifest as UTF-8".into()),
        )
    })?;
    Ok((shown, format, text))
}

/// The largest manifest natsform reads (32 MiB). The 100,000-user
/// benchmark manifest is about 6 MiB; the limit bounds the time and memory
/// a hostile or mistaken file can cost.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

const SECRET_FILE_HELP: &str = "pass the manifest (natsform.toml or natsform.yaml) with -f; \
keep creds files and identities out of the repository";

/// What kind of secret file `text` is, if it is one: a NATS creds file or
/// an nkey seed file, or an age identity file.
fn secret_file_kind(text: &str) -> Option<&'static str> {
    if text.contains("NKEY SEED-----") || text.contains("-----BEGIN NATS USER JWT-----") {
        Some("a NATS creds or seed file (it holds a seed)")
    } else if text.lines().any(|l| {
        l.trim_start()
            .get(..16)
            .is_some_and(|p| p.eq_ignore_ascii_case("AGE-SECRET-KEY-1"))
    }) {
        Some("an age identity file (it holds a secret key)")
    } else if text.contains("PRIVATE KEY-----") {
        Some("a private key file")
    } else if text.lines().any(|l| {
        let t = l.trim();
        t.chars().all(|c| c.is_ascii_alphanumeric()) && crate::redact::contains_secret(t)
    }) {
        // A line that is a seed and nothing else (an nkey seed file; in a
        // manifest a key follows `=`, `:` or `-`).
        Some("an nkey seed file (it holds a seed)")
    } else {
        None
    }
}

/// Parses manifest text already read from `path`.
pub fn parse(path: &Path, format: Format, text: String) -> Result<Loaded, ManifestErrors> {
    let file = path.display().to_string();
    if let Some(kind) = secret_file_kind(&text) {
        // A creds file or identity named like a manifest: refuse before a
        // parser quotes the line holding the secret.
        return Err(ManifestErrors(vec![Diagnostic {
            file,
            line: None,
            source_line: None,
            address: None,
            message: format!("this is {kind}, not a manifest (its content is not shown)"),
            help: Some(SECRET_FILE_HELP.into()),
        }]));
    }
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
        .redacted()
    };
    // A parser error made sense of: the object's address, and the fix.
    let located = |line: Option<usize>, e: Explained| {
        let mut d = at_line(line, e.message);
        d.address = e.address;
        if e.help.is_some() {
            d.help = e.help;
        }
        d.redacted()
    };
    let too_deep = |line: usize| {
        let mut d = at_line(
            Some(line),
            format!("maps and lists nest more than {MAX_DEPTH} levels deep here"),
        );
        d.help = Some("no manifest field nests that deep: remove the nested value (it is probably under a misspelt or unknown key)".into());
        ManifestErrors(vec![d])
    };
    let mut duplicates = Vec::new();
    let manifest = match format {
        Format::Toml => match toml_too_deep(&text) {
            Some(line) => return Err(too_deep(line)),
            None => match toml::from_str::<Manifest>(&text) {
                // The TOML parser refuses duplicate keys itself.
                Ok(m) => m,
                Err(e) => {
                    let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
                    let message = e.message().trim();
                    if message.starts_with("duplicate key") {
                        if let Some(d) = line.and_then(|l| toml_duplicate(&text, l)) {
                            return Err(ManifestErrors(vec![located(line, d)]));
                        }
                    }
                    let spans = SourceMap::from_toml(&text);
                    let e = explain(Format::Toml, &spans, message, line);
                    return Err(ManifestErrors(vec![located(line, e)]));
                }
            },
        },
        Format::Yaml => {
            // serde_yaml keeps the last of two equal keys: walk the events
            // to find duplicates (and refuse deep nesting before serde and
            // the line map spend time on it).
            if let Some(line) = yaml_flow_too_deep(&text) {
                return Err(too_deep(line));
            }
            let check = SourceMap::yaml_check(&text);
            if let Some(line) = check.too_deep {
                return Err(too_deep(line));
            }
            match serde_yaml::from_str::<Manifest>(&text) {
                Ok(m) => {
                    duplicates = check.duplicates;
                    m
                }
                Err(e) => {
                    let line = e.location().map(|l| l.line());
                    let msg = strip_yaml_position(&e.to_string());
                    let spans = SourceMap::from_yaml(&text);
                    let e = explain(Format::Yaml, &spans, &msg, line);
                    return Err(ManifestErrors(vec![located(line, e)]));
                }
            }
        }
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
            .map(|d| {
                let name = d.path.last().map(String::as_str).unwrap_or("");
                Diagnostic {
                    file: file.clone(),
                    line: Some(d.line),
                    source_line: loaded.text.lines().nth(d.line - 1).map(str::to_string),
                    address: Some(address(&d.path)),
                    message: format!(
                        "`{name}` is defined twice in one mapping (first defined at line {})",
                        d.first_line
                    ),
                    help: Some(format!(
                        "each key may appear once in a mapping: merge the two `{name}` entries \
                         (lines {} and {}) into one, or rename one of them",
                        d.first_line, d.line
                    )),
                }
                .redacted()
            })
            .collect();
        return Err(ManifestErrors(diags));
    }
    Ok(loaded)
}

/// A duplicate key or table of a TOML document, from the line the parser
/// stopped at: its address, where it was first defined, and how to fix it.
/// `None` when the line is not a plain `[table]` header or `key = …` under
/// one (the parser's own message is shown then).
fn toml_duplicate(text: &str, line: usize) -> Option<Explained> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let before = &text[..start];
    let this = text[start..].lines().next()?.trim();
    // Everything above the duplicate parsed; its key positions give the
    // first definition.
    let earlier = SourceMap::from_toml(before);
    if this.starts_with("[[") {
        return None;
    }
    if let Some(header) = this.strip_prefix('[') {
        let header = header.split(']').next()?;
        let path = toml_key_path(header)?;
        let first = earlier.exact_line(&path)?;
        let shown = address(&path);
        return Some(Explained {
            address: Some(shown.clone()),
            message: format!("this table is defined twice (first defined at line {first})"),
            help: Some(format!(
                "a table may be defined once: merge the two `[{shown}]` tables (lines {first} and {line}) into one"
            )),
        });
    }
    // `key = value`: under the last table header above it.
    let (key, _) = this.split_once('=')?;
    let mut path = match before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
    {
        Some(h) if h.starts_with("[[") => return None,
        Some(h) => toml_key_path(h.strip_prefix('[')?.split(']').next()?)?,
        None => Vec::new(),
    };
    let key_path = toml_key_path(key)?;
    path.extend(key_path.iter().cloned());
    let first = earlier.exact_line(&path)?;
    let key_shown = address(&key_path);
    Some(Explained {
        address: Some(address(&path)),
        message: format!("`{key_shown}` is set twice in this table (first defined at line {first})"),
        help: Some(format!(
            "a key may be set once per table: keep one of the two `{key_shown}` (lines {first} and {line}), merging their values if both matter"
        )),
    })
}

/// The parts of a TOML dotted key (`a."b.c".d`), as toml_edit reads them.
fn toml_key_path(key: &str) -> Option<Vec<String>> {
    let keys = toml_edit::Key::parse(key.trim()).ok()?;
    Some(keys.iter().map(|k| k.get().to_string()).collect())
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
