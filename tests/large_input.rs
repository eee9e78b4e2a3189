//! Large and hostile input costs bounded work: a huge change of an allow
//! list is shown as a bounded, deterministic summary (not a quadratic
//! diff); a manifest over the size limit or nested deeper than the depth
//! limit is refused with a clear error before any parser spends time on it.
//! Nothing here measures time: the assertions are on the shape of the
//! output (`benches/` is the place for timings).

mod support;

use std::fmt::Write as _;
use std::fs;

use support::cli::Project;

const HEAD: &str = r#"[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.O]
system_account = "SYS"

[operators.O.accounts.SYS.users.sys]
"#;

fn with_allow_list(prefix: &str, n: usize) -> String {
    let mut t = format!("{HEAD}\n[operators.O.accounts.A.users.U]\npub = {{ allow = [\n");
    for i in 0..n {
        let _ = writeln!(t, "  \"{prefix}.{i}\",");
    }
    t.push_str("] }\n");
    t
}

#[test]
fn a_change_of_40000_subjects_is_shown_as_a_bounded_summary() {
    let n = 40_000;
    let project = Project::with_manifest("natsform.toml", &with_allow_list("old", n));
    project.apply();
    // Half the subjects stay, half are replaced.
    let mut text = with_allow_list("old", n / 2);
    text = text.replace(
        "] }\n",
        &(0..n / 2).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "  \"new.{i}\",");
            s
        }),
    ) + "] }\n";
    fs::write(&project.manifest, text).unwrap();

    let plan = project.run(&["plan"]).success();
    let out = &plan.stdout;
    assert!(
        out.contains("# user.O/A/U will be re-issued")
            || out.contains("# user.O/A/U will be updated"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "(a large change: {} lines removed and {} added, listed without their positions)",
            n / 2,
            n / 2
        )),
        "{}",
        &out[..out.len().min(3000)]
    );
    assert!(
        out.contains(&format!(
            "… {} more changed lines not shown; `natsform plan --json` has the claims before and after in full",
            n - 400
        )),
        "{}",
        &out[..out.len().min(3000)]
    );
    let removed = out.lines().filter(|l| l.starts_with("    - ")).count();
    let added = out.lines().filter(|l| l.starts_with("    + ")).count();
    assert_eq!((removed, added), (200, 200), "the cap splits evenly");
    // The first lines shown are the first that changed, in order.
    // The lines shown are the first that changed, in order; kept lines
    // are context, not changes.
    let first_removed = out.lines().find(|l| l.starts_with("    - ")).unwrap();
    assert_eq!(first_removed, "    -     - old.20000");
    let first_added = out.lines().find(|l| l.starts_with("    + ")).unwrap();
    assert_eq!(first_added, "    +     - new.0");
    assert!(
        out.contains("\n          - old.19999\n"),
        "context before the change"
    );
    assert!(
        !out.contains("-     - old.19999\n"),
        "kept lines are not listed as changed"
    );
    assert!(
        out.lines().count() < 600,
        "bounded output: {} lines",
        out.lines().count()
    );
    // Deterministic, byte for byte.
    assert_eq!(project.run(&["plan"]).success().stdout, *out);
    // The JSON plan still has everything.
    let json = project.run(&["plan", "--json"]).success().stdout;
    assert!(json.contains("new.19999") && json.contains("old.39999"));
}

#[test]
fn a_manifest_over_the_size_limit_is_refused_before_it_is_parsed() {
    let project = Project::with_manifest("natsform.toml", HEAD);
    // 33 MiB of comment: valid TOML, so only the size can refuse it.
    let mut text = String::from(HEAD);
    let filler = format!("# {}\n", "x".repeat(1022));
    while text.len() <= 33 * 1024 * 1024 {
        text.push_str(&filler);
    }
    fs::write(&project.manifest, &text).unwrap();
    let run = project.run(&["validate"]).failure();
    assert!(
        run.stderr
            .contains("error: the manifest is larger than 32 MiB, the most natsform reads"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("natsform.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
}

fn nested_refusal(file: &str, text: &str, line: usize) {
    let project = Project::with_manifest(file, text);
    let run = project.run(&["validate"]).failure();
    assert!(
        run.stderr
            .contains("error: maps and lists nest more than 64 levels deep here"),
        "{file}: {}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        run.stderr.contains(&format!("{file}:{line}\n")),
        "{file}: line {line} not named: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("(it is probably under a misspelt or unknown key)"),
        "{}",
        run.stderr
    );
    // The quoted line is cut, not printed whole.
    assert!(run.stderr.len() < 2_000, "{}", run.stderr.len());
    // Nothing was written.
    assert_eq!(project.files().len(), 1);
}

#[test]
fn deeply_nested_yaml_and_toml_under_an_unknown_field_are_refused() {
    // Deep enough to have cost seconds before (yaml-rust2's scanner is
    // quadratic in the depth of `[[[…`), small enough to stay fast.
    let n = 20_000;
    let yaml_head = "secrets:\n  recipients: [age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9]\noperators:\n  O:\n";
    nested_refusal(
        "natsform.yaml",
        &format!("{yaml_head}    bogus: {}{}\n", "[".repeat(n), "]".repeat(n)),
        5,
    );
    nested_refusal(
        "natsform.yaml",
        &format!(
            "{yaml_head}    bogus: {}1{}\n",
            "{a: ".repeat(n),
            "}".repeat(n)
        ),
        5,
    );
    // Block nesting: one key per line, each indented one more.
    let mut block = format!("{yaml_head}    bogus:\n");
    for i in 0..200 {
        let _ = writeln!(block, "{}k:", " ".repeat(6 + i));
    }
    nested_refusal("natsform.yaml", &block, 5 + 64 - 2);
    nested_refusal(
        "natsform.toml",
        &format!(
            "{HEAD}\n[operators.O.accounts.A]\nbogus = {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
        10,
    );
    nested_refusal(
        "natsform.toml",
        &format!(
            "{HEAD}\n[operators.O.accounts.A]\nbogus = {}1{}\n",
            "{ a = ".repeat(n),
            "}".repeat(n)
        ),
        10,
    );
}
