//! The habits of sops and Terraform users (issue 12, items 3, 4, 5, 8):
//! usage errors never exit 2; the identity is found in its default places
//! in the documented order; `--json` commands print a JSON error document;
//! `init` writes a `.gitignore`; `creds USER` suggests `ACCOUNT/USER`.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use support::cli::{demo_identity, Project};

fn quickstart() -> Project {
    Project::from_example("quickstart", "natsform.toml")
}

// ---------------------------------------------------------------- item 4

#[test]
fn usage_errors_never_exit_with_the_code_of_pending_changes() {
    let p = quickstart();
    // (arguments, what the message must still say)
    let cases: &[(&[&str], &str)] = &[
        (&["plan", "--jsn"], "unexpected argument '--jsn'"),
        (&["--color=sometimes", "plan"], "invalid value 'sometimes'"),
        (&["plan", "-detailed-exitcode"], "--detailed-exitcode"),
        (&["plan", "--format", "yaml"], "invalid value 'yaml'"),
        (&["apply", "--lock-timeout", "soon"], "--lock-timeout"),
        (&["creds", "--out"], "--out"),
        (&["nosuchcommand"], "unrecognized subcommand"),
        (&[], "Usage"),
        (&["server-config", "--interval", "0s"], "0s"),
    ];
    for (args, says) in cases {
        let run = p.natsform(args).run();
        assert_eq!(run.code, 1, "{args:?} exits 1:\n{}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // The code 2 keeps its one meaning; --help and --version succeed.
    assert_eq!(p.run(&["plan", "--detailed-exitcode"]).code, 2);
    let help = p.run(&["--help"]).success();
    assert!(help.stdout.contains("usage errors"), "{}", help.stdout);
    p.run(&["--version"]).success();
}

#[test]
fn a_terraform_style_single_dash_flag_names_the_flag_meant() {
    let p = quickstart();
    let run = natsform_snapshot!(p, ["plan", "-detailed-exitcode"]);
    assert_eq!(run.code, 1);
}

// ---------------------------------------------------------------- item 3

/// Where an identity can be, in the documented order of precedence.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Flag,
    NatsformFileVar,
    NatsformKeyVar,
    SopsFileVar,
    SopsKeyVar,
    NatsformDefaultFile,
    SopsDefaultFile,
}

const ORDER: [Place; 7] = [
    Place::Flag,
    Place::NatsformFileVar,
    Place::NatsformKeyVar,
    Place::SopsFileVar,
    Place::SopsKeyVar,
    Place::NatsformDefaultFile,
    Place::SopsDefaultFile,
];

/// `creds app/alice` with `good` (the identity the vault is sealed to) at
/// `good_at` and a valid identity the vault is not sealed to at each place
/// in `wrong_at`; the configuration directory is `config` (under `home`
/// when `xdg` is false).
fn creds_with(
    p: &Project,
    good_at: Option<Place>,
    wrong_at: &[Place],
    xdg: bool,
) -> support::cli::Run {
    let good = fs::read_to_string(demo_identity()).unwrap();
    let wrong = age::x25519::Identity::generate()
        .to_string()
        .expose_secret()
        .to_string();
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let config = if xdg {
        root.path().join("xdg")
    } else {
        home.join(".config")
    };
    let mut args = vec!["creds".to_string(), "app/alice".to_string()];
    let mut env: Vec<(&str, String)> = vec![
        ("HOME", home.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            if xdg {
                config.display().to_string()
            } else {
                String::new()
            },
        ),
    ];
    let mut place = |at: Place, key: &str, tag: &str| {
        let file = |path: PathBuf| {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, format!("# {tag}\n{key}\n")).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            path.display().to_string()
        };
        match at {
            Place::Flag => {
                let f = file(root.path().join(format!("{tag}-flag.txt")));
                args.extend(["--identity".to_string(), f]);
            }
            Place::NatsformFileVar => env.push((
                "NATSFORM_AGE_IDENTITY",
                file(root.path().join(format!("{tag}-natsform-var.txt"))),
            )),
            Place::NatsformKeyVar => env.push(("NATSFORM_AGE_KEY", key.to_string())),
            Place::SopsFileVar => env.push((
                "SOPS_AGE_KEY_FILE",
                file(root.path().join(format!("{tag}-sops-var.txt"))),
            )),
            Place::SopsKeyVar => env.push(("SOPS_AGE_KEY", key.to_string())),
            Place::NatsformDefaultFile => {
                file(config.join("natsform/identity.txt"));
            }
            Place::SopsDefaultFile => {
                file(config.join("sops/age/keys.txt"));
            }
        }
    };
    let good_key = good
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    if let Some(at) = good_at {
        place(at, &good_key, "good");
    }
    for at in wrong_at {
        place(*at, &wrong, "wrong");
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = p.natsform(&args).without_identity();
    for (k, v) in &env {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

#[test]
fn the_identity_is_found_in_each_place_in_the_documented_order() {
    let p = quickstart();
    p.apply();
    for (i, at) in ORDER.iter().enumerate() {
        // Found there alone.
        let alone = creds_with(&p, Some(*at), &[], true);
        assert_eq!(alone.code, 0, "{at:?} alone: {}", alone.stderr);
        assert!(alone.stdout.contains("BEGIN USER NKEY SEED"), "{at:?}");
        // It beats every later place (each holding an identity that
        // cannot open the vault)…
        let later = &ORDER[i + 1..];
        let beats = creds_with(&p, Some(*at), later, true);
        assert_eq!(beats.code, 0, "{at:?} before {later:?}: {}", beats.stderr);
        // …and every earlier place beats it.
        if i > 0 {
            let earlier = &ORDER[..i];
            let beaten = creds_with(&p, Some(*at), earlier, true);
            assert_eq!(
                beaten.code, 1,
                "{earlier:?} before {at:?}: {}",
                beaten.stdout
            );
            assert!(beaten.stdout.is_empty());
        }
    }
    // Without $XDG_CONFIG_HOME, both default files are under ~/.config.
    for at in [Place::NatsformDefaultFile, Place::SopsDefaultFile] {
        let run = creds_with(&p, Some(at), &[], false);
        assert_eq!(run.code, 0, "{at:?} under HOME: {}", run.stderr);
    }
}

#[test]
fn without_an_identity_the_error_lists_every_place_looked_at() {
    let p = quickstart();
    p.apply();
    let run = natsform_snapshot!(p.natsform(&["creds", "app/alice"]).without_identity());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("natsform/identity.txt"));
    assert!(run.stderr.contains("sops/age/keys.txt"));
    // apply --help names the variables.
    let help = p.run(&["apply", "--help"]).success().stdout;
    for var in [
        "NATSFORM_AGE_IDENTITY",
        "NATSFORM_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY",
        "XDG_CONFIG_HOME",
    ] {
        assert!(help.contains(var), "{var}: {help}");
    }
}

#[test]
fn init_then_apply_finds_the_identity_init_wrote() {
    let dir = Project::empty();
    let run = dir
        .natsform(&["init"])
        .without_manifest_flag()
        .without_identity()
        .run()
        .success();
    assert!(
        run.stdout.contains("finds this identity by default"),
        "{}",
        run.stdout
    );
    dir.natsform(&["apply", "--auto-approve"])
        .without_manifest_flag()
        .without_identity()
        .run()
        .success();
    let creds = dir
        .natsform(&["creds", "app/app"])
        .without_manifest_flag()
        .without_identity()
        .run()
        .success();
    assert!(creds.stdout.contains("BEGIN USER NKEY SEED"));
}

// ---------------------------------------------------------------- item 5

fn bad_project() -> Project {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad/auth_user_unknown.toml"),
    )
    .unwrap();
    Project::with_manifest("natsform.toml", &text)
}

#[test]
fn json_commands_print_a_json_error_document_on_an_invalid_manifest() {
    let p = bad_project();
    let text_code = p.run(&["plan"]).code;
    assert_eq!(text_code, 1);
    for args in [
        &["plan", "--json"][..],
        &["plan", "--format", "json"],
        &["plan", "--json", "--detailed-exitcode"],
        &["validate", "--json"],
        &["apply", "--json", "--auto-approve"],
    ] {
        let run = p.natsform(args).manifest_by_name().run();
        assert_eq!(run.code, text_code, "{args:?}");
        let doc: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", run.stdout));
        assert_eq!(doc["format_version"], 1, "{args:?}");
        let d = &doc["error"]["diagnostics"][0];
        assert_eq!(d["file"], "natsform.toml", "{args:?}");
        assert_eq!(d["line"], 11, "{args:?}");
        assert_eq!(doc["error"]["diagnostics"].as_array().unwrap().len(), 1);
        assert_eq!(d["address"], "account.O/gate", "{args:?}");
        assert!(d["message"].as_str().unwrap().contains("authsrv"), "{d}");
        assert!(d["help"].is_string(), "{d}");
        // A person reading the log still sees the text error.
        assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
    }
    // Nothing was written.
    assert!(!p.path().join("store").exists());
    assert!(!p.path().join("natsform.lock").exists());
    natsform_snapshot!(p.natsform(&["plan", "--json"]).manifest_by_name());
}

#[test]
fn json_errors_that_are_not_manifest_errors_have_a_message_and_no_diagnostics() {
    let p = Project::empty();
    let run = p
        .natsform(&["plan", "--json"])
        .without_manifest_flag()
        .run();
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no manifest found"));
    assert_eq!(doc["error"]["diagnostics"], serde_json::json!([]));
    // validate --json on a valid manifest: a JSON document too.
    let ok = quickstart().run(&["validate", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["users"], 2);
}

#[test]
fn a_json_plan_with_blockers_is_one_document() {
    // A blocked plan prints the plan document (its `blockers`) and exits
    // 1; no error document follows it on stdout.
    let p = quickstart();
    p.apply();
    let vault = p.path().join("vault");
    for e in fs::read_dir(&vault).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let run = p.run(&["plan", "--json"]);
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(doc["blockers"].as_array().is_some_and(|b| !b.is_empty()));
}

// ---------------------------------------------------------------- item 8

const IGNORED: [&str; 6] = [
    "creds/",
    "*.creds",
    ".natsform.run-lock",
    ".natsform-*.tmp",
    ".natsform-import-*",
    ".natsform-journal",
];

fn init(dir: &Project) -> support::cli::Run {
    dir.natsform(&["init"])
        .without_manifest_flag()
        .without_identity()
        .run()
}

#[test]
fn init_writes_a_gitignore_and_appends_only_missing_lines_to_one() {
    let dir = Project::empty();
    init(&dir).success();
    let written = fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    for line in IGNORED {
        assert!(written.lines().any(|l| l == line), "{line}: {written}");
    }
    // git itself ignores what `creds --out creds` writes.
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok()
    {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", dir.path())
                .output()
                .unwrap()
        };
        assert!(git(&["init", "-q"]).status.success());
        for f in [
            "creds/main/app/app.creds",
            "alice.creds",
            ".natsform.run-lock",
            ".natsform-x1.tmp",
            ".natsform-import-1/natsform.toml",
        ] {
            assert!(git(&["check-ignore", "-q", f]).status.success(), "{f}");
        }
        assert!(!git(&["check-ignore", "-q", "natsform.lock"])
            .status
            .success());
    }

    // An existing .gitignore keeps its lines; the missing ones are added.
    let dir = Project::empty();
    fs::write(dir.path().join(".gitignore"), "target/\n*.creds").unwrap();
    init(&dir).success();
    let updated = fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(updated.starts_with("target/\n*.creds\n"), "{updated}");
    assert_eq!(updated.matches("*.creds").count(), 1, "{updated}");
    for line in IGNORED {
        assert!(updated.lines().any(|l| l == line), "{line}: {updated}");
    }
    // A second init (another manifest name) leaves it as it is.
    fs::remove_file(dir.path().join("natsform.toml")).unwrap();
    init(&dir).success();
    assert_eq!(
        fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        updated
    );
}

#[cfg(unix)]
#[test]
fn init_refuses_a_gitignore_that_is_a_link_and_writes_nothing() {
    let dir = Project::empty();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere");
    fs::write(&target, "keep\n").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(".gitignore")).unwrap();
    let run = init(&dir);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    assert!(!dir.path().join("natsform.toml").exists());
}

#[test]
fn creds_of_a_user_without_its_account_suggests_each_account_with_that_user() {
    let p = Project::with_manifest(
        "natsform.toml",
        r#"[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.demo]
system_account = "SYS"

[operators.demo.accounts.SYS.users.admin]
[operators.demo.accounts.orders.users.alice]
[operators.demo.accounts.billing.users.alice]
[operators.demo.accounts.billing.users.bob]
"#,
    );
    let run = natsform_snapshot!(p, ["creds", "alice"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("`natsform creds orders/alice`"));
    assert!(run.stderr.contains("`natsform creds billing/alice`"));
    let one = p.run(&["creds", "bob"]);
    assert!(
        one.stderr
            .contains("did you mean `natsform creds billing/bob`?"),
        "{}",
        one.stderr
    );
    let none = p.run(&["creds", "carol"]);
    assert!(
        none.stderr
            .contains("no account of the manifest has a user"),
        "{}",
        none.stderr
    );
}

#[test]
fn show_renders_the_effective_permissions_of_scoped_users_as_plan_does() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let plan = p.run(&["plan"]).success().stdout;
    p.apply();
    let show = p.run(&["show", "sales/pam"]).success().stdout;
    // The template expanded for pam, as the plan of her creation showed it.
    let expanded = "sales.support.pam.>";
    assert!(plan.contains(expanded), "{plan}");
    assert!(show.contains(expanded), "{show}");
    assert!(
        show.contains("# as nats-server expands role `team-service` for this user:"),
        "{show}"
    );
    assert!(!show.contains("sales.leads.pam"), "{show}");
    // A user of a plain signing key has no such block.
    let plain = p.run(&["show", "A/U"]).success().stdout;
    assert!(!plain.contains("as nats-server expands"), "{plain}");
    natsform_snapshot!(p.natsform(&["show", "sales/pam"]).without_identity());
}
