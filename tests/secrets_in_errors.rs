//! A secret pasted where a public key belongs, or a secret file passed as
//! the manifest, is refused with an error that names the file, line and
//! field and says how to fix it, and that never shows the secret: not in
//! the message, not in the quoted source line. The messages are
//! snapshotted, the whole run (the secrets are random; the redacted text
//! is stable).

mod support;

use std::fs;

use support::cli::{demo_identity, find_secrets, Project, Run};

const HEAD: &str = r#"[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.O]
system_account = "SYS"

[operators.O.accounts.SYS.users.sys]
"#;

struct Secrets {
    user: String,
    account: String,
    operator: String,
    curve: String,
    age: String,
}

fn secrets() -> Secrets {
    use age::secrecy::ExposeSecret;
    Secrets {
        user: nkeys::KeyPair::new_user().seed().unwrap(),
        account: nkeys::KeyPair::new_account().seed().unwrap(),
        operator: nkeys::KeyPair::new_operator().seed().unwrap(),
        curve: nkeys::KeyPair::new(nkeys::KeyPairType::Curve)
            .seed()
            .unwrap(),
        age: age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string(),
    }
}

/// Each case: a name, the TOML after [`HEAD`] holding the secret, and the
/// field the error must name.
fn cases(s: &Secrets) -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "user_public_key",
            format!("[operators.O.accounts.A.users.ext]\npublic_key = \"{}\"\n", s.user),
            "user public key",
        ),
        (
            "operator_seed_as_user_public_key",
            format!("[operators.O.accounts.A.users.ext]\npublic_key = \"{}\"\n", s.operator),
            "user public key",
        ),
        (
            "import_account",
            format!(
                "[[operators.O.accounts.shop.imports]]\nsubject = \"orders.>\"\ntype = \"stream\"\naccount = \"{}\"\n",
                s.account
            ),
            "account public key",
        ),
        (
            "account_revocation",
            format!(
                "[operators.O.accounts.A.revocations]\n\"{}\" = \"2026-01-01\"\n",
                s.user
            ),
            "revocations",
        ),
        (
            "export_revocation",
            format!(
                "[[operators.O.accounts.A.exports]]\nsubject = \"orders.>\"\ntype = \"stream\"\n\n[operators.O.accounts.A.exports.revocations]\n\"{}\" = \"2026-01-01\"\n",
                s.account
            ),
            "export revocations",
        ),
        (
            "auth_user",
            format!(
                "[operators.O.accounts.gate.authorization]\nauth_users = [\"{}\"]\n\n[operators.O.accounts.gate.users.authsvc]\n",
                s.user
            ),
            "auth user",
        ),
        (
            "auth_allowed_account",
            format!(
                "[operators.O.accounts.gate.authorization]\nauth_users = [\"authsvc\"]\nallowed_accounts = [\"{}\"]\n\n[operators.O.accounts.gate.users.authsvc]\n",
                s.account
            ),
            "allowed",
        ),
        (
            "auth_xkey",
            format!(
                "[operators.O.accounts.gate.authorization]\nauth_users = [\"authsvc\"]\nxkey = \"{}\"\n\n[operators.O.accounts.gate.users.authsvc]\n",
                s.curve
            ),
            "curve",
        ),
    ]
}

/// Snapshots `natsform -f <file> validate` (the file by name, so the
/// message is stable) as `name`, through the secret guard of the shared
/// helper, and returns the failed run.
fn validate(p: &Project, name: &str) -> Run {
    natsform_snapshot!(name = name, p.natsform(&["validate"]).manifest_by_name()).failure()
}

fn to_yaml(toml_text: &str) -> String {
    let value: toml::Value = toml::from_str(toml_text).unwrap();
    serde_yaml::to_string(&value).unwrap()
}

/// Asserts the error hides `secret` (all of it and its tail) and the
/// secret's shape, and returns stderr for the snapshot.
fn check_hidden(stderr: &str, secret: &str) {
    assert!(!stderr.contains(&secret[4..]), "secret shown:\n{stderr}");
    assert!(find_secrets(stderr).is_empty(), "{stderr}");
}

#[test]
fn a_seed_in_any_public_key_field_is_refused_without_being_shown() {
    let s = secrets();
    for (name, flaw, field) in cases(&s) {
        let secret = [&s.user, &s.account, &s.operator, &s.curve]
            .into_iter()
            .find(|k| flaw.contains(k.as_str()))
            .unwrap()
            .clone();
        let toml_text = format!("{HEAD}\n{flaw}");
        for (ext, text) in [("toml", toml_text.clone()), ("yaml", to_yaml(&toml_text))] {
            let file = format!("natsform.{ext}");
            let p = Project::with_manifest(&file, &text);
            assert!(text.contains(&secret));
            let run = validate(&p, &format!("{name}_{ext}"));
            check_hidden(&run.stderr, &secret);
            assert!(
                run.stderr.contains(&format!("--> {file}:")),
                "{name}/{ext}: no line:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains(field),
                "{name}/{ext}: field `{field}` not named:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("(seed; not shown)"),
                "{name}/{ext}: does not say a seed was hidden:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("put the public key here"),
                "{name}/{ext}: no fix:\n{}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_secret_in_a_free_text_field_is_refused_before_it_reaches_a_jwt() {
    let s = secrets();
    for (name, flaw, secret) in [
        (
            "description_seed",
            format!(
                "[operators.O.accounts.A]\ndescription = \"our key is {}\"\n",
                s.account
            ),
            &s.account,
        ),
        (
            "tag_age_key",
            format!("[operators.O.accounts.A]\ntags = [\"key:{}\"]\n", s.age),
            &s.age,
        ),
    ] {
        let toml_text = format!("{HEAD}\n{flaw}");
        for (ext, text) in [("toml", toml_text.clone()), ("yaml", to_yaml(&toml_text))] {
            let file = format!("natsform.{ext}");
            let p = Project::with_manifest(&file, &text);
            // plan prints claims on stdout: it must refuse before that.
            for args in [&["validate"][..], &["plan"]] {
                let run = natsform_snapshot!(
                    name = format!("{name}_{ext}"),
                    p.natsform(args).manifest_by_name()
                )
                .failure();
                check_hidden(&run.stderr, secret);
                assert!(run.stdout.is_empty(), "{}", run.stdout);
                assert!(
                    run.stderr.contains(
                        "error: this line holds a secret (an nkey seed or an age secret key)"
                    ),
                    "{}",
                    run.stderr
                );
                assert!(
                    run.stderr.contains(&format!("--> {file}:")),
                    "{}",
                    run.stderr
                );
            }
        }
    }
}

/// A secret no line shows in plain text, but a parsed string holds:
/// written with an escape, or joined across lines. Refused before it can
/// reach a JWT (or the parsed-manifest cache), naming the key and never
/// quoting the line (most of the secret is plain there).
#[test]
fn a_secret_hidden_by_escapes_or_joined_lines_is_refused_without_its_line() {
    let s = secrets();
    let seed = &s.account;
    let (head, tail) = seed.split_at(20);
    let hidden = "`operators.O.accounts.A.description` holds a secret";
    for (name, file, flaw, expected) in [
        (
            "escaped_seed_toml",
            "natsform.toml",
            format!(
                "{HEAD}\n[operators.O.accounts.A]\ndescription = \"key \\u0053{}\"\n",
                &seed[1..]
            ),
            hidden,
        ),
        (
            "joined_seed_toml",
            "natsform.toml",
            format!(
                "{HEAD}\n[operators.O.accounts.A]\ndescription = \"\"\"{head}\\\n    {tail}\"\"\"\n"
            ),
            hidden,
        ),
        (
            "joined_seed_yaml",
            "natsform.yaml",
            format!(
                "secrets:\n  recipients:\n  - age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\n\
                 operators:\n  O:\n    system_account: SYS\n    accounts:\n      SYS:\n        users:\n          sys: {{}}\n\
                 \x20     A:\n        description: \"{head}\\\n          {tail}\"\n"
            ),
            hidden,
        ),
        // Another error on the same line (not a public key) must not quote
        // it either: it shows all but the escaped first character.
        (
            "escaped_seed_as_public_key_toml",
            "natsform.toml",
            format!(
                "{HEAD}\n[operators.O.accounts.A.users.ext]\npublic_key = \"\\u0053{}\"\n",
                &seed[1..]
            ),
            "`operators.O.accounts.A.users.ext.public_key` holds a secret",
        ),
        // Nor a parser error on that line.
        (
            "escaped_seed_parse_error_toml",
            "natsform.toml",
            format!(
                "{HEAD}\n[operators.O.accounts.A]\ndescription = \"\\u0053{} 1\n",
                &seed[1..]
            ),
            "natsform.toml:10",
        ),
    ] {
        assert!(!find_secrets(&flaw).iter().any(|f| f == seed), "{flaw}");
        let p = Project::with_manifest(file, &flaw);
        for args in [&["validate"][..], &["plan"]] {
            let run = natsform_snapshot!(name = name, p.natsform(args).manifest_by_name()).failure();
            check_hidden(&run.stderr, seed);
            assert!(!run.stderr.contains(tail), "{}", run.stderr);
            assert!(!run.stderr.contains(&seed[1..30]), "{}", run.stderr);
            assert!(run.stdout.is_empty(), "{}", run.stdout);
            assert!(run.stderr.contains(expected), "{}", run.stderr);
        }
    }
}

#[test]
fn an_age_secret_key_or_a_seed_as_recipient_is_refused_without_being_shown() {
    let s = secrets();
    for (name, secret) in [
        ("recipient_age_secret_key", &s.age),
        ("recipient_seed", &s.user),
    ] {
        let toml_text = HEAD.replace(
            "age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9",
            secret,
        );
        for (ext, text) in [("toml", toml_text.clone()), ("yaml", to_yaml(&toml_text))] {
            let file = format!("natsform.{ext}");
            let p = Project::with_manifest(&file, &text);
            let run = validate(&p, &format!("{name}_{ext}"));
            check_hidden(&run.stderr, secret);
            assert!(
                run.stderr.contains(&format!("--> {file}:")),
                "{}",
                run.stderr
            );
            assert!(run.stderr.contains("recipient"), "{}", run.stderr);
            assert!(run.stderr.contains("not shown"), "{}", run.stderr);
        }
    }
}

fn creds_file(seed: &str) -> String {
    // The JWT part does not matter for the parse; a real-looking one.
    format!(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2ln\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n*************************************************************\n"
    )
}

#[test]
fn a_creds_file_or_an_identity_passed_as_the_manifest_is_named_not_quoted() {
    let s = secrets();
    let demo = fs::read_to_string(demo_identity()).unwrap();
    let demo_key = demo
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    let files = [
        (
            "creds_as_manifest",
            "u.creds",
            creds_file(&s.user),
            s.user.clone(),
        ),
        (
            "creds_named_yaml",
            "natsform.yaml",
            creds_file(&s.user),
            s.user.clone(),
        ),
        (
            "creds_named_toml",
            "natsform.toml",
            creds_file(&s.user),
            s.user.clone(),
        ),
        (
            "identity_as_manifest",
            "identity.txt",
            demo.clone(),
            demo_key.clone(),
        ),
        (
            "identity_named_yaml",
            "natsform.yaml",
            demo.clone(),
            demo_key.clone(),
        ),
        (
            "identity_named_toml",
            "natsform.toml",
            format!("{}\n", s.age),
            s.age.clone(),
        ),
        (
            "seed_file_named_toml",
            "natsform.toml",
            format!("{}\n", s.account),
            s.account.clone(),
        ),
    ];
    for (name, file, text, secret) in files {
        let p = Project::with_manifest(file, &text);
        let run = validate(&p, name);
        check_hidden(&run.stderr, &secret);
        assert!(
            run.stderr.contains(&format!("--> {file}")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("not a manifest"), "{}", run.stderr);
        assert!(
            run.stderr.contains("help: pass the manifest"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_secret_in_a_syntax_error_line_is_not_quoted() {
    // The parser fails on the very line holding the seed.
    let s = secrets();
    for (file, text) in [
        ("natsform.toml", format!("{HEAD}\nkey = {}\n", s.user)),
        ("natsform.yaml", format!("operators: [\n  {}: {{\n", s.user)),
    ] {
        let p = Project::with_manifest(file, &text);
        let run = p.natsform(&["validate"]).manifest_by_name().run().failure();
        check_hidden(&run.stderr, &s.user);
        assert!(
            run.stderr.contains(&format!("--> {file}:")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn the_helpers_secret_guard_catches_seeds_and_the_demo_identity() {
    let demo = fs::read_to_string(demo_identity()).unwrap();
    assert_eq!(find_secrets(&demo).len(), 1, "the demo identity's key");
    let s = secrets();
    for secret in [&s.user, &s.account, &s.operator, &s.curve, &s.age] {
        assert_eq!(find_secrets(&format!("x {secret} y")), vec![secret.clone()]);
        let run = Run {
            code: 1,
            stdout: String::new(),
            stderr: format!("error: `{secret}`"),
        };
        let caught = std::panic::catch_unwind(|| run.no_secrets_shown(&["plan"]));
        assert!(caught.is_err(), "stderr with a secret passes the guard");
    }
    // creds may print its seed line on stdout, nothing else may.
    let creds = creds_file(&s.user);
    let ok = Run {
        code: 0,
        stdout: creds.clone(),
        stderr: String::new(),
    };
    ok.no_secrets_shown(&["creds", "A/U"]);
    let not_creds = Run {
        code: 0,
        stdout: creds,
        stderr: String::new(),
    };
    assert!(std::panic::catch_unwind(|| not_creds.no_secrets_shown(&["plan"])).is_err());
    let extra = Run {
        code: 0,
        stdout: format!("{}\n{}\n", creds_file(&s.user), s.account),
        stderr: String::new(),
    };
    assert!(std::panic::catch_unwind(|| extra.no_secrets_shown(&["creds", "A/U"])).is_err());
}

#[test]
fn the_whole_run_snapshot_takes_out_this_machine_and_random_values() {
    // The filters every `natsform_snapshot!` applies, on a made-up run: the
    // manifest one directory down, so the project and the temporary
    // directory around it differ.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("project")).unwrap();
    let manifest = dir.path().join("project/natsform.toml");
    fs::write(&manifest, HEAD).unwrap();
    let p = Project { dir, manifest };
    let bound = nkeys::KeyPair::new_account().public_key();
    let other = nkeys::KeyPair::new_user().public_key();
    fs::write(
        p.project_dir().join("natsform.lock"),
        format!("version = 1\n\n[keys]\n\"account.O/A#v1\" = \"{bound}\"\n"),
    )
    .unwrap();
    let run = Run {
        code: 1,
        stdout: format!(
            "{bound} signs {other} at 1767225600\n{}/natsform.toml\n",
            p.project_dir().display()
        ),
        stderr: format!(
            "error: {}/outside (pid {}) in {}\nnatsform {}",
            p.path().display(),
            std::process::id(),
            env!("CARGO_BIN_EXE_natsform"),
            env!("CARGO_PKG_VERSION")
        ),
    };
    insta::assert_snapshot!(run.snapshot(&p), @r"
    success: false
    exit_code: 1
    ----- stdout -----
    <account.O/A#v1> signs <KEY> at <TIME>
    [PROJECT]/natsform.toml
    ----- stderr -----
    error: [TEMP]/outside (pid [PID]) in [NATSFORM]
    natsform [VERSION]
    [no newline at the end]
    ");
}
