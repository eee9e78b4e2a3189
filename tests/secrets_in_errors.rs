//! A secret pasted where a public key belongs, or a secret file passed as
//! the manifest, is refused with an error that names the file, line and
//! field and says how to fix it, and that never shows the secret: not in
//! the message, not in the quoted source line. The messages are
//! snapshotted (the secrets are random; the redacted text is stable).

mod support;

use std::fs;
use std::process::Command;

use support::cli::{demo_identity, find_secrets, Run};

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

/// Runs `natsform -f <file> validate` in `dir` (a relative path, so the
/// message is stable) through the secret guard of the shared helper.
fn validate(dir: &std::path::Path, file: &str) -> Run {
    let args = ["validate"];
    let out = Command::new(env!("CARGO_BIN_EXE_natsform"))
        .args(["-f", file])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("NATSFORM_AGE_IDENTITY", demo_identity())
        .env_remove("NATSFORM_AGE_KEY")
        .output()
        .unwrap();
    Run::from(out).no_secrets_shown(&args).failure()
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
            let dir = tempfile::tempdir().unwrap();
            let file = format!("natsform.{ext}");
            fs::write(dir.path().join(&file), &text).unwrap();
            assert!(text.contains(&secret));
            let run = validate(dir.path(), &file);
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
            insta::assert_snapshot!(format!("{name}_{ext}"), run.stderr);
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
            let dir = tempfile::tempdir().unwrap();
            let file = format!("natsform.{ext}");
            fs::write(dir.path().join(&file), &text).unwrap();
            // plan prints claims on stdout: it must refuse before that.
            for args in [&["validate"][..], &["plan"]] {
                let out = Command::new(env!("CARGO_BIN_EXE_natsform"))
                    .args(["-f", &file])
                    .args(args)
                    .current_dir(dir.path())
                    .env("NO_COLOR", "1")
                    .env("NATSFORM_AGE_IDENTITY", demo_identity())
                    .output()
                    .unwrap();
                let run = Run::from(out).no_secrets_shown(args).failure();
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
                insta::assert_snapshot!(format!("{name}_{ext}"), run.stderr);
            }
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
            let dir = tempfile::tempdir().unwrap();
            let file = format!("natsform.{ext}");
            fs::write(dir.path().join(&file), &text).unwrap();
            let run = validate(dir.path(), &file);
            check_hidden(&run.stderr, secret);
            assert!(
                run.stderr.contains(&format!("--> {file}:")),
                "{}",
                run.stderr
            );
            assert!(run.stderr.contains("recipient"), "{}", run.stderr);
            assert!(run.stderr.contains("not shown"), "{}", run.stderr);
            insta::assert_snapshot!(format!("{name}_{ext}"), run.stderr);
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
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file), &text).unwrap();
        let run = validate(dir.path(), file);
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
        insta::assert_snapshot!(name, run.stderr);
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
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file), &text).unwrap();
        let run = validate(dir.path(), file);
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
