//! Issue 8, item 7: control characters from a manifest, a stored JWT or a
//! store file name never reach `plan`, `show` or error output raw. They are
//! shown as `\u{1b}` (Rust's notation); natsform's own colours still work.

mod support;

use std::fs;

use support::cli::{demo_identity, Project};

/// ESC[2J (clear screen), BEL, DEL, a C1 CSI, a right-to-left override and
/// a newline, as TOML escapes (TOML forbids them raw).
const NASTY_TOML: &str = r"clear\u001b[2J bell\u0007 del\u007f csi\u009b31m rlo\u202e\nsecond line";

fn manifest(description: &str) -> String {
    format!(
        r#"
[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.demo]
system_account = "SYS"

[operators.demo.accounts.SYS.users.admin]

[operators.demo.accounts.app]
description = "{description}"

[operators.demo.accounts.app.users.alice]
"#
    )
}

/// No character a terminal acts on: C0 controls but newline and tab, DEL,
/// C1, line separators and bidirectional controls.
fn assert_clean(what: &str, text: &str) {
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !bad,
            "{what}: raw {c:?} at byte {i}: {:?}",
            &text[i.saturating_sub(40)..(i + 40).min(text.len())]
        );
    }
}

fn assert_escaped_visibly(what: &str, text: &str) {
    for shown in ["\\u{1b}[2J", "\\u{7}", "\\u{7f}", "\\u{9b}31m", "\\u{202e}"] {
        assert!(text.contains(shown), "{what}: `{shown}` missing:\n{text}");
    }
}

#[test]
fn a_description_with_controls_is_escaped_in_plan_show_and_json() {
    let project = Project::with_manifest("natsform.toml", &manifest(NASTY_TOML));
    let plan = project.run(&["plan"]).success();
    assert_clean("plan", &plan.stdout);
    assert_clean("plan stderr", &plan.stderr);
    assert_escaped_visibly("plan", &plan.stdout);
    // The newline does not start a line of its own that could pass for
    // natsform's: the description stays one line of the plan.
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("description:"))
        .expect("description in the plan");
    assert!(line.ends_with("\\nsecond line\""), "{line}");
    assert!(!plan.stdout.lines().any(|l| l.starts_with("second line")));

    let json = project.run(&["plan", "--json"]).success();
    assert_clean("plan --json", &json.stdout);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(doc["actions"].is_array());

    // Stored, the description comes back from the JWT: show escapes it.
    project.apply();
    let show = project.run(&["show"]).success();
    assert_clean("show", &show.stdout);
    assert_escaped_visibly("show", &show.stdout);

    // A change shows the stored (before) and the new (after) description.
    fs::write(
        &project.manifest,
        manifest(&format!("{NASTY_TOML}\\u001b[0m")),
    )
    .unwrap();
    let plan = project.run(&["plan"]).success();
    assert_clean("plan of an update", &plan.stdout);
    assert!(plan.stdout.contains("    - description: \"clear\\u{1b}[2J"));
    assert!(plan.stdout.contains("second line\\u{1b}[0m\""));
}

#[test]
fn own_colours_still_work() {
    let project = Project::with_manifest("natsform.toml", &manifest(NASTY_TOML));
    let plan = project
        .run_env(&["plan", "--color", "always"], &[("NO_COLOR", "")])
        .success();
    assert!(
        plan.stdout.contains("\x1b[32m+"),
        "no colour:\n{}",
        plan.stdout
    );
    // With natsform's SGR sequences taken out, nothing raw is left.
    let mut rest = String::new();
    let mut s = plan.stdout.as_str();
    while let Some(i) = s.find('\x1b') {
        rest.push_str(&s[..i]);
        let tail = &s[i + 1..];
        let end = tail
            .strip_prefix('[')
            .and_then(|t| t.find('m').map(|m| m + 2))
            .filter(|&e| {
                tail[1..e - 1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';')
            })
            .expect("only SGR colour sequences");
        s = &tail[end..];
    }
    rest.push_str(s);
    assert_clean("coloured plan", &rest);
    assert_escaped_visibly("coloured plan", &rest);
}

/// The stored JWT of `alice`, re-signed by its real issuer with `edit`
/// applied to its claims: a validly signed JWT whose claims hold controls.
fn resign_alice(project: &Project, edit: impl FnOnce(&mut natsform::claims::UserClaims)) {
    use natsform::keys::{Identities, IdentitySources, Vault};
    let path = project
        .path()
        .join("store/demo/accounts/app/users/alice.jwt");
    let token = fs::read_to_string(&path).unwrap();
    let mut claims: natsform::claims::UserClaims = natsform::claims::decode_as(&token).unwrap();
    let ids = Identities::load(&IdentitySources {
        paths: vec![demo_identity()],
        ..Default::default()
    })
    .unwrap();
    let signer = Vault::new(project.path().join("vault"))
        .get(&claims.data.iss, &ids)
        .unwrap();
    edit(&mut claims);
    claims.data.iat += 1;
    let token = natsform::claims::encode(&mut claims, &signer).unwrap();
    fs::write(&path, token).unwrap();
}

#[test]
fn a_stored_jwt_with_controls_is_escaped_in_plan_and_show() {
    let project = Project::with_manifest("natsform.toml", &manifest("plain"));
    project.apply();
    resign_alice(&project, |c| {
        c.data.name = "alice\u{1b}[2J\u{7}".to_string();
        c.nats
            .generic
            .tags
            .push("t\u{9b}31m\u{7f}\u{202e}\nforged: line".to_string());
    });
    let show = project.run(&["show"]).success();
    assert_clean("show", &show.stdout);
    assert!(
        show.stdout.contains("name: \"alice\\u{1b}[2J\\u{7}\""),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("\"t\\u{9b}31m\\u{7f}\\u{202e}\\nforged: line\""),
        "{}",
        show.stdout
    );
    assert!(!show
        .stdout
        .lines()
        .any(|l| l.trim_start().starts_with("forged")));

    let plan = project.run(&["plan"]).success();
    assert_clean("plan", &plan.stdout);
    assert!(
        plan.stdout.contains("- name: \"alice\\u{1b}[2J\\u{7}\""),
        "{}",
        plan.stdout
    );
    let json = project.run(&["plan", "--json"]).success();
    assert_clean("plan --json", &json.stdout);
}

#[test]
fn errors_escape_what_they_quote() {
    // A name the manifest refuses, written with a TOML escape: the message
    // quotes the decoded name.
    let text = manifest("plain").replace("accounts.app", "accounts.\"a\\u001b[2Jpp\"");
    let project = Project::with_manifest("natsform.toml", &text);
    let run = project.run(&["plan"]).failure();
    assert_clean("validation error", &run.stderr);
    assert!(run.stderr.contains("a\\u{1b}[2Jpp"), "{}", run.stderr);

    // A store file name.
    let project = Project::with_manifest("natsform.toml", &manifest("plain"));
    project.apply();
    let users = project.path().join("store/demo/accounts/app/users");
    fs::copy(
        users.join("alice.jwt"),
        users.join("x\u{1b}]0;title\u{7}.jwt"),
    )
    .unwrap();
    for args in [&["plan"][..], &["show"], &["apply", "--auto-approve"]] {
        let run = project.run(args).failure();
        assert_clean("store name error", &run.stderr);
        assert!(
            run.stderr.contains("x\\u{1b}]0;title\\u{7}"),
            "{}",
            run.stderr
        );
    }
}
