//! apply's progress bar: shown for long work on a terminal, never in a
//! pipe, with `--quiet` or with `--json`.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::cli::Project;

/// At least the number of items from which apply shows a bar (1,000).
const USERS: usize = 1000;

fn many_users() -> Project {
    let mut text = String::from(
        "[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n\
         [operators.P]\nsystem_account = \"SYS\"\n\n[operators.P.accounts.SYS.users.admin]\n\n\
         [operators.P.accounts.A.signing_keys.main]\n",
    );
    for i in 0..USERS {
        text.push_str(&format!(
            "\n[operators.P.accounts.A.users.u{i}]\nsigner = \"main\"\n"
        ));
    }
    Project::with_manifest("natsform.toml", &text)
}

/// Rotates the signing key of every user to `label`: the next apply
/// signs and writes them all again.
fn rotate(p: &Project, label: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    let head = "[operators.P.accounts.A.signing_keys.main]\n";
    let at = text.find(head).unwrap() + head.len();
    let rest = &text[at..];
    let rest = match rest.strip_prefix("keys = [") {
        Some(r) => &r[r.find('\n').unwrap() + 1..],
        None => rest,
    };
    fs::write(
        &p.manifest,
        format!("{}keys = [\"{label}\"]\n{rest}", &text[..at]),
    )
    .unwrap();
}

fn shows_a_bar(text: &str) -> bool {
    text.contains('\r') || text.contains('\u{1b}')
}

/// Runs natsform with `args` on a pseudo-terminal (util-linux `script`),
/// returning everything it wrote there; `None` without `script`.
fn on_a_terminal(p: &Project, args: &[&str]) -> Option<String> {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("no /usr/bin/script: the terminal half of this test is skipped");
        return None;
    }
    let inner = p.natsform(args).command();
    let mut words = vec![inner.get_program().to_string_lossy().into_owned()];
    words.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
    let line = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut outer = Command::new(script);
    outer.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        outer.current_dir(dir);
    }
    let out = outer.output().expect("running script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(support::cli::find_secrets(&text).is_empty(), "{text}");
    Some(text)
}

#[test]
fn long_work_shows_a_bar_on_a_terminal_only() {
    let p = many_users();
    // In a pipe: the notes, and nothing a terminal would draw.
    let run = p.run(&["apply", "--auto-approve"]).success();
    assert!(!shows_a_bar(&run.stderr), "{:?}", run.stderr);
    assert!(run.stderr.contains("user.P/A/u999 created"));

    // On a terminal: a bar while signing and writing 1,000 JWTs. (A
    // terminal turns every newline into "\r\n": the bar is told by its text.)
    rotate(&p, "v2");
    if let Some(text) = on_a_terminal(&p, &["apply", "--auto-approve"]) {
        assert!(text.contains("Signing JWTs ["), "{text}");
        assert!(text.contains("user.P/A/u999 re-issued"), "{text}");
    }
    // With --quiet or --json, none even there.
    for (label, args) in [
        ("v3", ["-q", "apply", "--auto-approve"]),
        ("v4", ["apply", "--auto-approve", "--json"]),
    ] {
        rotate(&p, label);
        if let Some(text) = on_a_terminal(&p, &args) {
            assert!(!text.contains("JWTs ["), "{args:?}: {text}");
        }
    }
}
