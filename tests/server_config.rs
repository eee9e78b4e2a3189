//! `natsform server-config`: its output, included as is, starts every
//! nats-server version found (Debian's 2.9.10 and PyPI's newest) in each
//! resolver mode, and the creds natsform issues are authorized as declared
//! on it. The texts (config and errors) are snapshotted.

mod support;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use support::cli::Project;
use support::nats::{self, NatsServer};

/// Accounts of the walkthrough that are not the system account.
const PUSHED: [&str; 2] = ["A", "sales"];

fn applied_walkthrough() -> Project {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    project
}

/// Starts `binary` with `include natsform.conf`, that file being the
/// output of `natsform server-config <args> [--dir <server dir>/jwt]`.
fn start_with_generated(project: &Project, binary: &Path, args: &[&str]) -> NatsServer {
    NatsServer::start_binary_with(binary, |dir| {
        let jwt_dir = dir.join("jwt");
        let mut all: Vec<&str> = vec!["server-config"];
        all.extend_from_slice(args);
        let jwt_dir_text = jwt_dir.to_str().expect("UTF-8 temp dir").to_string();
        if !args.contains(&"memory") {
            all.extend(["--dir", &jwt_dir_text]);
        }
        let run = project.natsform(&all).without_identity().run().success();
        assert!(run.stderr.is_empty(), "no warning expected: {}", run.stderr);
        fs::write(dir.join("natsform.conf"), &run.stdout).expect("writing the include");
        "include natsform.conf\n".to_string()
    })
}

/// The JWT the store holds for account `name` of O2.
fn account_jwt(project: &Project, name: &str) -> String {
    project.store_file(&format!("O2/accounts/{name}/{name}.jwt"))
}

/// Users connect and are held to the walkthrough's permissions.
fn assert_walkthrough_authorized(server: &NatsServer, project: &Project, what: &str) {
    let v = format!("{what} on {}", server.version());
    let mut u = server.connect_ok(&project.creds("A/U"));
    u.publish("foo", b"x")
        .unwrap_or_else(|e| panic!("{v}: U publishes: {e}"));
    let mut worker = server.connect_ok(&project.creds("A/worker"));
    worker
        .subscribe("q.work")
        .unwrap_or_else(|e| panic!("{v}: worker subscribes q.work: {e}"));
    let err = worker
        .publish("foo", b"x")
        .expect_err("the service role denies publishing");
    assert!(err.contains("Permissions Violation"), "{v}: {err}");
    let mut pam = server.connect_ok(&project.creds("sales/pam"));
    pam.subscribe("sales.support.pam.x")
        .unwrap_or_else(|e| panic!("{v}: pam's own subject: {e}"));
    let err = pam
        .subscribe("sales.leads.joe.x")
        .expect_err("pam must not read joe's subjects");
    assert!(err.contains("Permissions Violation"), "{v}: {err}");
}

/// A `$SYS.REQ.CLAIMS.DELETE` request for `account`, self-signed by a
/// fresh operator key the server does not trust: a server with
/// `allow_delete` answers "not trusted", one without "delete must be
/// enabled in server config" (it checks that first).
fn untrusted_delete_request(account: &str) -> Vec<u8> {
    let key = KeyPair::new_operator();
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let payload = serde_json::json!({
        "jti": "natsform-test",
        "iat": 1,
        "iss": key.public_key(),
        "sub": key.public_key(),
        "nats": {"accounts": [account], "type": "generic", "version": 2},
    });
    let payload = BASE64URL_NOPAD.encode(payload.to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let sig = key.sign(signed.as_bytes()).expect("signing");
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&sig)).into_bytes()
}

/// The description of a DELETE request's error reply.
fn delete_reply(server: &NatsServer, project: &Project) -> String {
    let mut sys = server.connect_ok(&project.creds("SYS/sys"));
    let a = nats::jwt_subject(&account_jwt(project, "A"));
    let reply = sys
        .request(
            "$SYS.REQ.CLAIMS.DELETE",
            &untrusted_delete_request(&a),
            nats::DEFAULT_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{}: delete request: {e}", server.version()));
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    reply["error"]["description"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: not an error: {reply}", server.version()))
        .to_string()
}

/// Pushes the non-system accounts with the SYS user, as apply does.
fn push_accounts(server: &NatsServer, project: &Project) {
    let mut sys = server.connect_ok(&project.creds("SYS/sys"));
    for name in PUSHED {
        let reply = sys
            .request(
                "$SYS.REQ.CLAIMS.UPDATE",
                account_jwt(project, name).as_bytes(),
                nats::DEFAULT_TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("{}: pushing {name}: {e}", server.version()));
        let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(
            reply["data"]["code"],
            200,
            "{}: pushing {name}: {reply}",
            server.version()
        );
    }
}

#[test]
fn full_resolver_config_starts_every_server_and_takes_pushed_accounts() {
    let project = applied_walkthrough();
    for binary in nats::nats_server_binaries() {
        let server = start_with_generated(&project, &binary, &["--resolver", "full"]);
        let v = server.version().to_string();
        // Only the system account is preloaded: A's users are unknown yet.
        let err = server
            .connect(&project.creds("A/U"))
            .expect_err("A is not pushed yet");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
        push_accounts(&server, &project);
        assert_walkthrough_authorized(&server, &project, "full resolver");
        // allow_delete: true (the default) lets natsform delete accounts.
        let jwt_dir = server.dir().join("jwt");
        let pushed = jwt_dir.join(format!(
            "{}.jwt",
            nats::jwt_subject(&account_jwt(&project, "A"))
        ));
        assert!(
            pushed.is_file(),
            "{v}: the full resolver keeps A in its dir"
        );
        let reply = delete_reply(&server, &project);
        assert!(reply.contains("not trusted"), "{v}: {reply}");
    }
}

#[test]
fn full_resolver_settings_reach_the_server() {
    let project = applied_walkthrough();
    for binary in nats::nats_server_binaries() {
        let server = start_with_generated(
            &project,
            &binary,
            &[
                "--allow-delete",
                "false",
                "--interval",
                "5s",
                "--timeout",
                "500ms",
            ],
        );
        let v = server.version().to_string();
        push_accounts(&server, &project);
        // Without allow_delete the server refuses a DELETE before it looks
        // at who signed it.
        let reply = delete_reply(&server, &project);
        assert!(
            reply.contains("delete must be enabled in server config"),
            "{v}: {reply}"
        );
        assert!(server.config().contains("include natsform.conf"));
    }
}

#[test]
fn cache_resolver_config_starts_every_server_and_fetches_accounts() {
    let project = applied_walkthrough();
    for binary in nats::nats_server_binaries() {
        let server = start_with_generated(&project, &binary, &["--resolver", "cache"]);
        let v = server.version().to_string();
        // A cache resolver fetches unknown accounts with a LOOKUP request,
        // which full resolvers answer; a system user plays that part here.
        let mut responder = server.connect_ok(&project.creds("SYS/sys"));
        responder
            .subscribe("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP")
            .unwrap_or_else(|e| panic!("{v}: subscribing to lookups: {e}"));
        let accounts: Vec<(String, String)> = PUSHED
            .iter()
            .map(|n| {
                let jwt = account_jwt(&project, n);
                (nats::jwt_subject(&jwt), jwt)
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let answered = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut answered = 0;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let Some(msg) = responder.next_message(Duration::from_millis(100)) else {
                        continue;
                    };
                    if let Some((_, jwt)) = accounts
                        .iter()
                        .find(|(public, _)| msg.subject.contains(public.as_str()))
                    {
                        responder.respond(&msg, jwt.as_bytes()).expect("answering");
                        answered += 1;
                    }
                }
                answered
            })
        };
        assert_walkthrough_authorized(&server, &project, "cache resolver");
        stop.store(true, Ordering::Relaxed);
        let answered = answered.join().expect("responder thread");
        assert!(answered >= 2, "{v}: the server looked up A and sales");
    }
}

#[test]
fn memory_resolver_config_preloads_every_account() {
    let project = applied_walkthrough();
    for binary in nats::nats_server_binaries() {
        let server = start_with_generated(&project, &binary, &["--resolver", "memory"]);
        assert_walkthrough_authorized(&server, &project, "memory resolver");
        let sys = server.connect_ok(&project.creds("SYS/sys"));
        drop(sys);
    }
}

#[test]
fn output_of_each_mode() {
    let project = applied_walkthrough();
    let run = natsform_snapshot!(
        name = "full_default",
        project.natsform(&["server-config"]).without_identity()
    );
    // The same store gives the same bytes.
    assert_eq!(
        run.stdout,
        project.natsform(&["server-config"]).run().stdout
    );
    natsform_snapshot!(
        name = "full_settings",
        project.natsform(&[
            "server-config",
            "--resolver",
            "full",
            "--dir",
            "/var/lib/nats/jwt",
            "--allow-delete",
            "false",
            "--interval",
            "30s",
            "--timeout",
            "3s",
        ])
    );
    natsform_snapshot!(
        name = "cache",
        project.natsform(&["server-config", "--resolver", "cache", "--ttl", "10m"])
    );
    natsform_snapshot!(
        name = "memory",
        project.natsform(&["server-config", "--resolver", "memory"])
    );
    natsform_snapshot!(
        name = "help",
        project.natsform(&["server-config", "--help"])
    );
}

#[test]
fn errors_say_what_to_do() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    natsform_snapshot!(
        name = "not_applied",
        project.natsform(&["server-config"]).without_identity()
    );
    project.apply();
    for (name, args) in [
        (
            "unknown_operator",
            &["server-config", "--operator", "nope"][..],
        ),
        (
            "flag_of_other_mode",
            &["server-config", "--resolver", "memory", "--dir", "x"],
        ),
        ("ttl_on_full", &["server-config", "--ttl", "1h"]),
        ("bad_dir", &["server-config", "--dir", "a\"b"]),
        ("zero_interval", &["server-config", "--interval", "0s"]),
    ] {
        let run = natsform_snapshot!(name = name, project.natsform(args).without_identity());
        assert_ne!(run.code, 0, "{name}");
    }

    // A store behind the manifest: the config is printed, with a warning.
    fs::write(
        &project.manifest,
        fs::read_to_string(&project.manifest).unwrap() + "\n[operators.O2.accounts.new]\n",
    )
    .unwrap();
    let run = natsform_snapshot!(
        name = "store_behind",
        project.natsform(&["server-config", "--resolver", "memory"])
    );
    assert!(!run.stdout.contains("Account \"new\""));
    project.apply();
    // A new user changes no JWT the config holds: no warning.
    fs::write(
        &project.manifest,
        fs::read_to_string(&project.manifest).unwrap() + "\n[operators.O2.accounts.new.users.u]\n",
    )
    .unwrap();
    let run = project
        .natsform(&["server-config"])
        .without_identity()
        .run()
        .success();
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // An account JWT the operator does not trust (signed by another
    // operator's key) is refused, naming it.
    let other = Project::from_example("quickstart", "natsform.toml");
    other.apply();
    let foreign = fs::read_dir(other.path().join("store"))
        .unwrap()
        .flat_map(|op| fs::read_dir(op.unwrap().path().join("accounts")).unwrap())
        .map(|a| a.unwrap().path())
        .next()
        .expect("quickstart has an account");
    let foreign_jwt = fs::read_dir(&foreign)
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jwt"))
        .unwrap();
    fs::copy(
        foreign_jwt,
        project.path().join("store/O2/accounts/A/A.jwt"),
    )
    .unwrap();
    let run = project
        .natsform(&["server-config", "--resolver", "memory"])
        .without_identity()
        .run()
        .failure();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("account.O2/A"), "{}", run.stderr);
}

#[test]
fn several_operators_need_a_choice() {
    let two = "[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\
        [operators.one]\nsystem_account = \"SYS\"\n[operators.one.accounts.SYS]\n\
        [operators.two]\nsystem_account = \"SYS\"\n[operators.two.accounts.SYS]\n";
    let project = Project::with_manifest("natsform.toml", two);
    project.apply();
    natsform_snapshot!(
        name = "choose_operator",
        project.natsform(&["server-config"]).without_identity()
    );
    let run = project
        .natsform(&["server-config", "--operator", "one"])
        .without_identity()
        .run()
        .success();
    assert!(run.stdout.contains("# System account \"SYS\""));
}
