//! Where everything a command prints goes: stdout for results, stderr for
//! progress and errors, colour only on a terminal (or when asked).

use std::io::{IsTerminal, Write};

use super::{Cli, ColorChoice};
use crate::manifest::ManifestErrors;
use crate::plan::render::Style;
use crate::safepath::escape_controls;

/// Printing policy for one run.
pub struct Output {
    pub quiet: bool,
    stdout_color: bool,
    stderr_color: bool,
}

impl Output {
    pub fn new(cli: &Cli) -> Self {
        let choice = if cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        {
            ColorChoice::Never
        } else {
            cli.color
        };
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true),
        };
        Output {
            quiet: cli.quiet,
            stdout_color: decide(std::io::stdout().is_terminal()),
            stderr_color: decide(std::io::stderr().is_terminal()),
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
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A text plan, streamed to stdout rather than built in memory first.
    pub fn plan(&self, plan: &crate::plan::Plan) {
        let mut w = FmtToIo(std::io::BufWriter::new(std::io::stdout().lock()));
        crate::plan::render::write_text(&mut w, plan, self.style());
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
        let head = if self.stderr_color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        eprintln!("{head}: {}", shown(text));
    }

    /// An error, with its causes; manifest errors print as they render.
    pub fn error(&self, e: &anyhow::Error) {
        let head = if self.stderr_color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        // Messages quote manifest lines, store names and claims: seeds and
        // age secret keys are hidden (defence in depth: the errors
        // themselves redact) and control characters escaped before our
        // colour is added.
        if let Some(m) = e.downcast_ref::<ManifestErrors>() {
            let text = shown(&m.to_string()).replace("error:", &format!("{head}:"));
            eprintln!("{text}");
            return;
        }
        eprintln!("{head}: {}", shown(&e.to_string()));
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {}", shown(&cause.to_string()));
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
