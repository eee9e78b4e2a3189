//! A private service export imported by account name: natsform issues the
//! activation token (signed by the exporter), embeds it in the importer, and
//! a real nats-server (every version found) routes the importer's requests.
//! Rotating the exporter's key re-issues the activation and the importer.

mod support;

use std::fs;
use std::thread;

use support::cli::Project;
use support::nats::{self, NatsServer, DEFAULT_TIMEOUT};

const MANIFEST: &str = r#"
[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.P]
signing_keys = ["ops"]
system_account = "SYS"

[operators.P.accounts.SYS.users.sys]

[operators.P.accounts.A]
[[operators.P.accounts.A.exports]]
subject = "help.>"
type = "service"
private = true
[operators.P.accounts.A.users.helper]

[[operators.P.accounts.B.imports]]
subject = "help.desk"
from = "A"
type = "service"
local_subject = "ask"
[operators.P.accounts.B.users.asker]

[operators.P.accounts.C.users.stranger]
"#;

fn request_through_import(project: &Project) {
    let config = project.memory_resolver_config("P");
    let (helper, asker) = (project.creds("A/helper"), project.creds("B/asker"));
    for binary in nats::nats_server_binaries() {
        let server = NatsServer::start_binary_with(&binary, |_| config.clone());
        let v = server.version().to_string();
        let mut responder = server.connect(&helper).unwrap();
        responder.subscribe("help.desk").unwrap();
        let answering = thread::spawn(move || {
            let msg = responder
                .next_message(DEFAULT_TIMEOUT)
                .expect("the request reaches account A");
            responder.respond(&msg, b"A helps").unwrap();
        });
        let mut client = server.connect(&asker).unwrap();
        let reply = client
            .request("ask", b"?", DEFAULT_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "{v}: request through the private import: {e}\n{}",
                    server.log()
                )
            });
        assert_eq!(reply, b"A helps", "{v}");
        answering.join().unwrap();
    }
}

#[test]
fn a_private_export_imported_by_name_works_through_a_natsform_activation() {
    let project = Project::with_manifest("natsform.toml", MANIFEST);
    project.apply();
    // The activation is embedded and signed by A for B.
    let b = support::nats::jwt_claims(&project.store_file("P/accounts/B/B.jwt"));
    let token = b["nats"]["imports"][0]["token"]
        .as_str()
        .expect("an activation token")
        .to_string();
    let act = support::nats::jwt_claims(&token);
    let a = support::nats::jwt_claims(&project.store_file("P/accounts/A/A.jwt"));
    assert_eq!(act["iss"], a["sub"]);
    assert_eq!(act["sub"], b["sub"]);
    assert_eq!(act["nats"]["kind"], "service");
    assert_eq!(act["nats"]["subject"], "help.desk");
    // A fresh token each signing must not look like a change.
    assert!(project
        .run(&["plan"])
        .success()
        .stdout
        .contains("No changes."));
    request_through_import(&project);

    // Rotate A's identity key: A is replaced, B gets a new activation.
    fs::write(
        &project.manifest,
        MANIFEST.replace(
            "[operators.P.accounts.A]\n",
            "[operators.P.accounts.A]\nkey = \"v2\"\n",
        ),
    )
    .unwrap();
    let plan = project.redact(&project.run(&["plan"]).success().stdout);
    assert!(plan.contains("account.P/A will be replaced"), "{plan}");
    assert!(plan.contains("account.P/B will be updated"), "{plan}");
    project.apply();
    assert!(project
        .run(&["plan"])
        .success()
        .stdout
        .contains("No changes."));
    let b2 = support::nats::jwt_claims(&project.store_file("P/accounts/B/B.jwt"));
    assert_ne!(b2["nats"]["imports"][0]["token"].as_str().unwrap(), token);
    request_through_import(&project);
}
