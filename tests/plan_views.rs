//! The views of a plan beside the text one (which plan_scenarios.rs and
//! plan_snapshots.rs pin): `--format markdown`, the plan as a pull-request
//! comment (the walkthrough changes a reviewer sees, the size limit of a
//! comment, content from the manifest that must not escape its place), and
//! the JSON document of `--format json`.

mod support;

use std::fmt::Write as _;
use std::fs;

use support::cli::Project;

fn applied() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    p
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// `natsform -f <manifest> plan --format markdown` in the project
/// directory, with the manifest path as a reviewer's pipeline gives it.
fn markdown_of(p: &Project, manifest: &str) -> String {
    p.natsform(&["plan", "--format", "markdown"])
        .manifest_as(manifest)
        .without_identity()
        .run()
        .success()
        .stdout
}

fn markdown(p: &Project) -> String {
    p.redact(&markdown_of(p, "natsform.toml"))
}

/// The `<details>` blocks and fences are balanced and every fence closes
/// with exactly the run that opened it.
fn assert_well_formed(md: &str) {
    let mut fence: Option<&str> = None;
    let mut open_details = 0i32;
    for line in md.lines() {
        match fence {
            Some(f) => {
                if line == f {
                    fence = None;
                }
            }
            None => {
                if line.starts_with("```") {
                    let run = line.trim_end_matches("diff");
                    assert!(run.chars().all(|c| c == '`'), "odd fence: {line}");
                    fence = Some(run);
                    continue;
                }
                if line.starts_with("<details>") {
                    open_details += 1;
                }
                if line == "</details>" {
                    open_details -= 1;
                }
                assert!(
                    (0..=1).contains(&open_details),
                    "unbalanced <details> at {line}"
                );
            }
        }
    }
    assert!(fence.is_none(), "a fence stays open");
    assert_eq!(open_details, 0, "a <details> stays open");
}

#[test]
fn a_role_change_a_new_user_and_a_deleted_user_as_a_comment() {
    let p = applied();
    // The role `team-service` of sales gains a subject: each of its users'
    // effective permissions change.
    edit(&p, "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\"] }", "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\", \"{{account-name()}}.{{tag(team)}}.shared.>\"] }");
    edit(&p, "[operators.O2.accounts.A.users.worker]", "[operators.O2.accounts.A.users.reporter]\nsigner = \"main\"\nsub = { allow = [\"reports.>\"] }\n\n[operators.O2.accounts.A.users.worker]");
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "",
    );
    let md = markdown(&p);
    assert!(
        md.starts_with("<!-- natsform plan: natsform.toml -->\n"),
        "{md}"
    );
    assert!(
        md.contains("revokes user\\.O2/A/U \\(not in the manifest\\)"),
        "{md}"
    );
    assert!(
        md.contains(
            "#### Role <code>team-service</code> of <code>account.O2/sales</code>: 2 users"
        ),
        "{md}"
    );
    assert!(md.contains("sales.support.shared.>") && md.contains("sales.leads.shared.>"));
    assert!(!md.contains("Not everything fits"));
    assert_well_formed(&md);
    insta::assert_snapshot!(md);
}

#[test]
fn no_changes_is_one_line_under_the_marker() {
    let p = applied();
    let md = markdown(&p);
    assert_eq!(
        md,
        "<!-- natsform plan: natsform.toml -->\n**natsform plan:** no changes. The store matches the manifest.\n"
    );
}

#[test]
fn json_is_an_alias_of_format_json_and_they_conflict() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "",
    );
    let a = p.run_without_identity(&["plan", "--json"]).success().stdout;
    let b = p
        .run_without_identity(&["plan", "--format", "json"])
        .success()
        .stdout;
    assert_eq!(a, b);
    let doc: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(doc["actions"][0]["reason_kinds"][0], "claims-changed");
    assert_eq!(doc["actions"][0]["reason_kinds"][1], "revokes-user");
    p.run_without_identity(&["plan", "--json", "--format", "text"])
        .failure();
}

#[test]
fn the_json_document_is_pinned() {
    let p = applied();
    edit(&p, "[operators.O2.accounts.A.users.worker]", "[operators.O2.accounts.A.users.reporter]\nsigner = \"main\"\nsub = { allow = [\"reports.>\"] }\n\n[operators.O2.accounts.A.users.worker]");
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "",
    );
    let run = p
        .run_without_identity(&["plan", "--format", "json"])
        .success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert!(doc.get("lock_records").is_none() && doc.get("blockers").is_none());
    insta::assert_snapshot!(p.redact(&run.stdout));
}

/// Everything a hostile description could try in a comment.
const HOSTILE: &str =
    r#"``` </details> <!-- --> <script>alert(1)</script> *bold* [x](https://evil) ~~~ \u001b[2J"#;

fn hostile_manifest(description: &str) -> String {
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

#[test]
fn a_hostile_description_stays_inside_its_fence() {
    let p = Project::with_manifest("natsform.toml", &hostile_manifest(HOSTILE));
    let md = markdown_of(&p, "natsform.toml");
    assert_well_formed(&md);
    assert!(!md.contains('\u{1b}'));
    // The description is one line, inside a fence longer than its backticks.
    let line = md
        .lines()
        .find(|l| l.contains("description:"))
        .expect("description in the comment");
    assert!(line.contains("<script>"), "{line}");
    let before = &md[..md.find(line).unwrap()];
    let opening = before.lines().rev().find(|l| l.starts_with("```")).unwrap();
    assert_eq!(opening, "````diff", "{md}");
    // Outside fences, nothing from the manifest is markup, and the only
    // comment is the marker.
    let mut inside = false;
    let mut outside = String::new();
    for l in md.lines() {
        if l.starts_with("```") {
            inside = !inside;
            continue;
        }
        if !inside {
            outside.push_str(l);
            outside.push('\n');
        }
    }
    assert!(!outside.contains("<script"), "{outside}");
    assert!(!outside.contains("[x]"), "{outside}");
    assert_eq!(outside.matches("-->").count(), 1, "{outside}");
    assert_eq!(outside.matches("<!--").count(), 1, "{outside}");

    // A hostile manifest path cannot close the marker comment either.
    let dir = p.path().join("x --> <b>");
    fs::create_dir(&dir).unwrap();
    fs::copy(&p.manifest, dir.join("natsform.toml")).unwrap();
    let md = markdown_of(&p, "x --> <b>/natsform.toml");
    let marker = md.lines().next().unwrap();
    assert!(marker.starts_with("<!-- natsform plan: x "), "{marker}");
    assert_eq!(marker.matches("-->").count(), 1, "{marker}");
    assert!(
        marker.ends_with(" -->") && !marker.contains("<b>"),
        "{marker}"
    );
}

/// 100,000 users, none applied: the full comment would run to megabytes.
#[test]
fn a_plan_of_100000_users_fits_a_comment_and_says_what_it_left_out() {
    let users = 100_000;
    let mut t = String::from(
        r#"[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.big]
system_account = "SYS"

[operators.big.accounts.SYS.users.sys]

[operators.big.accounts.app]
"#,
    );
    for u in 0..users {
        let _ = writeln!(t, "[operators.big.accounts.app.users.u{u:06}]");
    }
    let p = Project::with_manifest("natsform.toml", &t);
    let md = markdown_of(&p, "natsform.toml");
    let n = md.chars().count();
    assert!(n <= 65_536, "{n} characters");
    assert!(
        md.contains("**natsform plan:** 100004 to create, 0 to update"),
        "{}",
        &md[..500]
    );
    assert!(md.contains("**Not everything fits in a comment**"));
    // Every object is accounted for: shown, or counted as left out.
    // Too many for blocks: one line per object shown.
    assert!(!md.contains("<details><summary><code>"));
    let shown = md
        .lines()
        .filter(|l| l.starts_with("- <code>+</code> <b>"))
        .count();
    assert!(shown > 300, "{shown} shown");
    let left: usize = md
        .lines()
        .find(|l| l.contains("listed in the counts above but not shown one by one"))
        .and_then(|l| l.strip_prefix("- "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count of the objects left out");
    assert_eq!(shown + left, 100_004, "{shown} shown");
    assert!(md.contains("run `natsform plan` locally"));
    // The list of keys to generate is cut too, and says so.
    assert!(
        md.contains(" more keys, left out to fit the comment; `natsform plan` lists them all"),
        "{md}"
    );
    assert_well_formed(&md);
}

/// A few objects with very large diffs: the largest are shortened first,
/// each says how many of its lines are left out, and every header stays.
#[test]
fn large_diffs_are_shortened_largest_first_and_every_header_stays() {
    let mut t = String::from(
        r#"[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.O]
system_account = "SYS"

[operators.O.accounts.SYS.users.sys]

[operators.O.accounts.A.users.small]
[operators.O.accounts.A.users.big]
pub = { allow = [
"#,
    );
    for i in 0..5_000 {
        let _ = writeln!(t, "  \"subject.number.{i}\",");
    }
    t.push_str("] }\n");
    let p = Project::with_manifest("natsform.toml", &t);
    let md = markdown_of(&p, "natsform.toml");
    assert!(md.chars().count() <= 65_536);
    for address in [
        "user.O/A/small",
        "user.O/A/big",
        "account.O/A",
        "operator.O",
    ] {
        assert!(md.contains(&format!("<b>{address}</b>")), "{address}");
    }
    // Only the big diff is cut; the small user is shown whole.
    assert_eq!(
        md.matches("of this diff left out to fit the comment")
            .count(),
        1
    );
    let small = md.find("<b>user.O/A/small</b>").unwrap();
    let small_block = &md[small..small + md[small..].find("</details>").unwrap()];
    assert!(small_block.contains("+ name: small"), "{small_block}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("- ") && l.contains(" diff lines of 1 object (the largest")),
        "{md}"
    );
    assert_well_formed(&md);
}

/// Colour (anstyle styles through anstream) only when asked, and never
/// when `--no-color` or `NO_COLOR` says no; the other views never colour.
#[test]
fn colour_only_when_asked_and_never_in_markdown_or_json() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let always = p
        .run_env(&["plan", "--color", "always"], &[("NO_COLOR", "")])
        .success()
        .stdout;
    assert!(always.contains("\u{1b}[32m+\u{1b}[0m"), "{always}");
    assert!(always.contains("\u{1b}[1moperator.O2\u{1b}[0m"), "{always}");
    for (args, env) in [
        (&["plan", "--color", "always", "--no-color"][..], ""),
        (&["plan", "--color", "always"][..], "1"),
        (
            &["plan", "--color", "always", "--format", "markdown"][..],
            "",
        ),
        (&["plan", "--color", "always", "--format", "json"][..], ""),
    ] {
        let out = p.run_env(args, &[("NO_COLOR", env)]).success().stdout;
        assert!(!out.contains('\u{1b}'), "{args:?} NO_COLOR={env:?}");
    }
}
