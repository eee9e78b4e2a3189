//! Claim fields as real nats-server enforces them (every version found):
//! account connection limits, user source networks, JetStream limits, and a
//! service import wired by account name.

mod support;

use std::thread;

use serde_json::Value;
use support::cli::Project;
use support::nats::{self, Client, NatsServer, DEFAULT_TIMEOUT};

const MANIFEST: &str = r#"
[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.E]
system_account = "SYS"

[operators.E.accounts.SYS.users.sys]

[operators.E.accounts.one]
limits = { conn = 1 }
[operators.E.accounts.one.users.solo]

[operators.E.accounts.net.users.far]
src = ["10.0.0.0/8"]
[operators.E.accounts.net.users.near]
src = ["127.0.0.1/32"]

[operators.E.accounts.js]
jetstream = { mem_storage = "1MiB", streams = 1 }
[operators.E.accounts.js.users.u]

[[operators.E.accounts.A.exports]]
subject = "svc.echo"
type = "service"
[operators.E.accounts.A.users.server]

[[operators.E.accounts.B.imports]]
subject = "svc.echo"
from = "A"
type = "service"
local_subject = "echo"
[operators.E.accounts.B.users.client]
"#;

fn applied() -> Project {
    let project = Project::with_manifest("natsform.toml", MANIFEST);
    project.apply();
    project
}

#[test]
fn account_conn_limit_and_user_src_networks_are_enforced_on_every_server() {
    let project = applied();
    let config = project.memory_resolver_config("E");
    let (solo, far, near) = (
        project.creds("one/solo"),
        project.creds("net/far"),
        project.creds("net/near"),
    );
    for binary in nats::nats_server_binaries() {
        let server = NatsServer::start_binary_with(&binary, |_| config.clone());
        let v = server.version().to_string();

        let _first = server.connect_ok(&solo);
        let err = server
            .connect(&solo)
            .expect_err("a second connection must exceed conn = 1");
        assert!(
            err.contains("maximum account active connections"),
            "{v}: {err}"
        );

        let err = server
            .connect(&far)
            .expect_err("a user limited to 10.0.0.0/8 must not connect from 127.0.0.1");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
        server.connect_ok(&near);
    }
}

/// Sends `$JS.API.STREAM.CREATE.<name>` and returns the JSON reply.
fn create_stream(client: &mut Client, name: &str, max_bytes: i64) -> Value {
    let config = serde_json::json!({
        "name": name,
        "subjects": [format!("{name}.>")],
        "storage": "memory",
        "max_bytes": max_bytes,
    });
    let reply = client
        .request(
            &format!("$JS.API.STREAM.CREATE.{name}"),
            config.to_string().as_bytes(),
            DEFAULT_TIMEOUT,
        )
        .expect("JetStream answers");
    serde_json::from_slice(&reply).expect("JSON reply")
}

#[test]
fn jetstream_limits_admit_streams_within_them_and_refuse_the_rest() {
    let project = applied();
    let config = project.memory_resolver_config("E");
    let creds = project.creds("js/u");
    for binary in nats::nats_server_binaries() {
        let server = NatsServer::start_binary_with(&binary, |dir| {
            format!(
                "{config}\njetstream {{ store_dir: \"{}\" }}\n",
                dir.join("js").display()
            )
        });
        let v = server.version().to_string();
        let mut c = server.connect_ok(&creds);

        let too_big = create_stream(&mut c, "BIG", 2 * 1024 * 1024);
        assert!(
            too_big.get("error").is_some(),
            "{v}: a 2 MiB stream exceeds mem_storage = 1MiB: {too_big}"
        );
        let ok = create_stream(&mut c, "S1", 512 * 1024);
        assert!(ok.get("error").is_none(), "{v}: {ok}");
        let second = create_stream(&mut c, "S2", 1024);
        assert!(
            second.get("error").is_some(),
            "{v}: streams = 1 admits no second stream: {second}"
        );
    }
}

#[test]
fn a_public_service_export_imported_by_account_name_answers_requests() {
    let project = applied();
    let config = project.memory_resolver_config("E");
    let (server_creds, client_creds) = (project.creds("A/server"), project.creds("B/client"));
    for binary in nats::nats_server_binaries() {
        let server = NatsServer::start_binary_with(&binary, |_| config.clone());
        let v = server.version().to_string();
        let mut responder = server.connect_ok(&server_creds);
        responder.subscribe("svc.echo").unwrap();
        let answering = thread::spawn(move || {
            let msg = responder
                .next_message(DEFAULT_TIMEOUT)
                .expect("the request reaches account A");
            let mut reply = b"A says: ".to_vec();
            reply.extend_from_slice(&msg.payload);
            responder.respond(&msg, &reply).unwrap();
        });
        let mut client = server.connect_ok(&client_creds);
        let reply = client
            .request("echo", b"hello", DEFAULT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{v}: request through the import: {e}"));
        assert_eq!(reply, b"A says: hello", "{v}");
        answering.join().unwrap();
    }
}

#[test]
fn an_import_of_a_subject_the_exporter_does_not_export_is_refused_before_anything_is_written() {
    let manifest = MANIFEST.replace(
        "subject = \"svc.echo\"\nfrom = \"A\"",
        "subject = \"svc.secret\"\nfrom = \"A\"",
    );
    let project = Project::with_manifest("natsform.toml", &manifest);
    for args in [&["validate"][..], &["apply", "--auto-approve"]] {
        let run = project.run(args).failure();
        assert!(
            run.stderr
                .contains("account `A` does not export `svc.secret`"),
            "{}",
            run.stderr
        );
    }
    let files: Vec<_> = project.files().into_iter().map(|(p, _)| p).collect();
    assert_eq!(files, vec![std::path::PathBuf::from("natsform.toml")]);
}
