//! Where everything a command prints goes: stdout for results, stderr for
//! progress and errors, colour only on a terminal (or when asked).
//!
//! Colours are anstyle styles; every stream goes through anstream, which
//! strips them when the stream is not to show colour (not a terminal,
//! `NO_COLOR`, `--color never`/`--no-color`, `TERM=dumb`).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style as Ansi};

use super::{Cli, ColorChoice, Command};
use crate::manifest::ManifestErrors;
use crate::plan::views::Style;
use crate::safepath::escape_controls;

/// Printing policy for one run.
pub struct Output {
    pub quiet: bool,
    stdout_color: bool,
    stderr_color: bool,
    /// The command was asked for JSON (`plan --json`/`--format json`,
    /// `apply --json`, `validate --json`): an error is a JSON document on
    /// stdout too.
    json: bool,
    /// Something was written to stdout: an error then adds no second
    /// document (a JSON plan already carries its blockers).
    stdout_used: AtomicBool,
}

impl Output {
    pub fn new(cli: &Cli) -> Self {
        // NO_COLOR wins even over --color always, as it always has here.
        let choice = if cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        {
            anstream::ColorChoice::Never
        } else {
            match cli.color {
                ColorChoice::Always => anstream::ColorChoice::Always,
                ColorChoice::Never => anstream::ColorChoice::Never,
                ColorChoice::Auto => anstream::ColorChoice::Auto,
            }
        };
        choice.write_global();
        let shows = |c: anstream::ColorChoice| {
            !matches!(
                c,
                anstream::ColorChoice::Never | anstream::ColorChoice::Auto
            )
        };
        Output {
            quiet: cli.quiet,
            stdout_color: shows(anstream::AutoStream::choice(&std::io::stdout())),
            stderr_color: shows(anstream::AutoStream::choice(&std::io::stderr())),
            json: match &cli.command {
                Command::Plan(a) => a.json || a.format == super::plan::Format::Json,
                Command::Apply(a) => a.json,
                Command::Validate(a) => a.json,
                _ => false,
            },
            stdout_used: AtomicBool::new(false),
        }
    }

    /// Styling for text written to stdout.
    pub fn style(&self) -> Style {
        Style {
            color: self.stdout_color,
        }
    }

    /// A result: always printed to stdout.
    pub fn result(&self, text: &str) {
        self.stdout_used.store(true, Ordering::Relaxed);
        let mut stdout = anstream::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A text plan, streamed to stdout rather than built in memory first.
    pub fn plan(&self, plan: &crate::plan::Plan) {
        self.stdout_used.store(true, Ordering::Relaxed);
        let stdout = std::io::BufWriter::new(anstream::stdout().lock());
        let mut w = FmtToIo(stdout);
        crate::plan::views::text::write(&mut w, plan, self.style());
        let _ = w.0.flush();
    }

    /// Progress and notes: stderr, silenced by --quiet.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{}", shown(text));
        }
    }

    /// A warning: stderr, even with --quiet (it asks the user to act).
    pub fn warning(&self, text: &str) {
        let head = self.paint_stderr(AnsiColor::Yellow, "warning");
        anstream::eprintln!("{head}: {}", shown(text));
    }

    /// An error, with its causes; manifest errors print as they render.
    pub fn error(&self, e: &anyhow::Error) {
        if self.json && !self.stdout_used.load(Ordering::Relaxed) {
            self.result(&json_error(e));
        }
        let head = self.paint_stderr(AnsiColor::Red, "error");
        // Messages quote manifest lines, store names and claims: seeds and
        // age secret keys are hidden (defence in depth: the errors
        // themselves redact) and control characters escaped before our
        // colour is added.
        if let Some(m) = e.downcast_ref::<ManifestErrors>() {
            let text = shown(&m.to_string()).replace("error:", &format!("{head}:"));
            anstream::eprintln!("{text}");
            return;
        }
        anstream::eprintln!("{head}: {}", shown(&e.to_string()));
        for cause in e.chain().skip(1) {
            anstream::eprintln!("  caused by: {}", shown(&cause.to_string()));
        }
    }

    /// `word` in bold `color` when stderr shows colour.
    fn paint_stderr(&self, color: AnsiColor, word: &str) -> String {
        if self.stderr_color {
            let style = Ansi::new().bold().fg_color(Some(color.into()));
            format!("{style}{word}{style:#}")
        } else {
            word.to_string()
        }
    }

    /// Whether stdin and stderr are a terminal (so we may ask questions).
    pub fn interactive(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
}

/// Lets the renderers, which write `fmt::Write`, write to a byte stream.
struct FmtToIo<W: Write>(W);

impl<W: Write> std::fmt::Write for FmtToIo<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
    }
}

/// What an error or note may show: no secret, no terminal control.
fn shown(text: &str) -> String {
    escape_controls(&crate::redact::redact_secrets(text)).into_owned()
}

/// The JSON error document (`format_version` 1) a command asked for JSON
/// prints on stdout when it fails before printing anything else:
/// `{"format_version": 1, "error": {"message", "causes", "diagnostics":
/// [{"file", "line", "address", "message", "help"}]}}`. `diagnostics` lists
/// each manifest problem (empty for other errors); `line`, `address` and
/// `help` are `null` when unknown. Strings are shown as on stderr: secrets
/// hidden, control characters escaped.
pub(super) fn json_error(e: &anyhow::Error) -> String {
    use serde_json::{json, Value};
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, |s| shown(s).into());
    let (message, causes, diagnostics) = match e.downcast_ref::<ManifestErrors>() {
        Some(m) => {
            let n = m.0.len();
            let diagnostics: Vec<Value> =
                m.0.iter()
                    .map(|d| {
                        let d = d.clone().redacted();
                        json!({
                            "file": shown(&d.file),
                            "line": d.line,
                            "address": opt(&d.address),
                            "message": shown(&d.message),
                            "help": opt(&d.help),
                        })
                    })
                    .collect();
            (
                format!(
                    "{n} error{} in the manifest; nothing was changed",
                    if n == 1 { "" } else { "s" }
                ),
                Vec::new(),
                diagnostics,
            )
        }
        None => (
            shown(&e.to_string()),
            e.chain().skip(1).map(|c| shown(&c.to_string())).collect(),
            Vec::new(),
        ),
    };
    let doc = json!({
        "format_version": 1,
        "error": {
            "message": message,
            "causes": causes,
            "diagnostics": diagnostics,
        },
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
