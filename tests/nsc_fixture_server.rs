//! Proves the nats-server harness against the nsc-store fixture: a real
//! server, loaded with the fixture's operator and accounts, enforces the
//! permissions the fixture README describes.

mod support;

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use support::nats::{self, Client, NatsServer};

const WAIT: Duration = Duration::from_secs(5);

fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nsc-store")
        .join(relative)
}

fn fixture(relative: &str) -> String {
    let path = fixture_path(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn creds(account: &str, user: &str) -> String {
    fixture(&format!("creds/O2/{account}/{user}.creds"))
}

/// A server trusting operator O2, with SYS as system account and every
/// account of the fixture preloaded into the memory resolver.
fn fixture_server() -> NatsServer {
    let operator_jwt = fixture("stores/O2/O2.jwt");
    let system_account = nats::jwt_subject(&fixture("stores/O2/accounts/SYS/SYS.jwt"));
    let mut accounts = Vec::new();
    for entry in fs::read_dir(fixture_path("stores/O2/accounts")).expect("listing accounts") {
        let name = entry.expect("reading accounts dir").file_name();
        let name = name.to_str().expect("account dir name is UTF-8");
        let jwt = fixture(&format!("stores/O2/accounts/{name}/{name}.jwt"));
        accounts.push((nats::jwt_subject(&jwt), jwt.trim().to_owned()));
    }
    accounts.sort();
    assert_eq!(accounts.len(), 3, "fixture has accounts A, SYS and sales");
    let server = NatsServer::start(&nats::memory_resolver_config(
        &operator_jwt,
        &system_account,
        &accounts,
    ));
    eprintln!(
        "nats-server {} ({}) on port {}",
        server.version(),
        server.binary().display(),
        server.port()
    );
    server
}

fn connect(server: &NatsServer, account: &str, user: &str) -> Client {
    server
        .connect(&creds(account, user))
        .unwrap_or_else(|e| panic!("{account}/{user} should connect: {e}"))
}

#[track_caller]
fn assert_err_contains(result: Result<impl std::fmt::Debug, String>, expected: &str) {
    match result {
        Ok(value) => panic!("expected an error containing {expected:?}, got Ok({value:?})"),
        Err(e) => assert!(e.contains(expected), "expected {expected:?} in {e:?}"),
    }
}

#[test]
fn server_starts_and_reports_its_version_and_log() {
    let server = fixture_server();
    assert!(
        server.version().starts_with("2."),
        "version {:?}",
        server.version()
    );
    assert!(
        server.log().contains("Server is ready"),
        "log:\n{}",
        server.log()
    );
    assert!(server.config().contains("resolver: MEMORY"));
}

#[test]
fn user_u_may_publish_on_a_but_not_on_b() {
    let server = fixture_server();
    let mut u = connect(&server, "A", "U");
    u.publish("a.x", b"hello").expect("U may publish a.x");
    assert_err_contains(
        u.publish("b.x", b"hello"),
        r#"-ERR 'Permissions Violation for Publish to "b.x"'"#,
    );
    // The violation does not close the connection.
    u.publish("a.y", b"still here")
        .expect("U may publish after a violation");
    u.subscribe("a.>").expect("U may subscribe a.>");
    assert_err_contains(
        u.subscribe("b.x"),
        r#"-ERR 'Permissions Violation for Subscription to "b.x"'"#,
    );
}

#[test]
fn messages_flow_between_two_connections() {
    let server = fixture_server();
    let mut subscriber = connect(&server, "A", "U");
    let mut publisher = connect(&server, "A", "U");
    subscriber.subscribe("a.>").expect("subscribe a.>");
    publisher.publish("a.news", b"payload").expect("publish");
    assert_eq!(
        subscriber.next_msg(WAIT),
        Some(("a.news".to_owned(), b"payload".to_vec()))
    );
    assert_eq!(subscriber.next_msg(Duration::from_millis(200)), None);
}

#[test]
fn scoped_worker_may_subscribe_q_but_not_publish() {
    let server = fixture_server();
    let mut worker = connect(&server, "A", "worker");
    worker
        .subscribe("q.work")
        .expect("worker may subscribe q.work");
    assert_err_contains(
        worker.publish("foo", b""),
        r#"-ERR 'Permissions Violation for Publish to "foo"'"#,
    );
    assert_err_contains(
        worker.subscribe("a.x"),
        r#"-ERR 'Permissions Violation for Subscription to "a.x"'"#,
    );
}

#[test]
fn templated_users_get_their_own_subjects_only() {
    let server = fixture_server();
    let mut pam = connect(&server, "sales", "pam");
    pam.subscribe("sales.support.pam.x")
        .expect("pam may subscribe sales.support.pam.x");
    assert_err_contains(
        pam.subscribe("sales.leads.joe.x"),
        r#"-ERR 'Permissions Violation for Subscription to "sales.leads.joe.x"'"#,
    );
    let mut joe = connect(&server, "sales", "joe");
    joe.subscribe("sales.leads.joe.x")
        .expect("joe may subscribe sales.leads.joe.x");
    assert_err_contains(
        joe.subscribe("sales.support.pam.x"),
        r#"-ERR 'Permissions Violation for Subscription to "sales.support.pam.x"'"#,
    );
}

#[test]
fn revoked_user_cannot_connect() {
    let server = fixture_server();
    assert_err_contains(
        server.connect(&creds("A", "gone")),
        "-ERR 'Authorization Violation'",
    );
}

#[test]
fn tampered_creds_cannot_connect() {
    let server = fixture_server();
    let original = creds("A", "U");
    let (jwt, _) = nats::parse_creds(&original).expect("fixture creds parse");
    // Flip a character in the middle of the signature: the last base64url
    // character carries padding bits that a lenient decoder may ignore.
    let signature_start = jwt.rfind('.').expect("JWT has a signature") + 1;
    let mut tampered_jwt = jwt.clone().into_bytes();
    let i = signature_start + 10;
    tampered_jwt[i] = if tampered_jwt[i] == b'A' { b'B' } else { b'A' };
    let tampered_jwt = String::from_utf8(tampered_jwt).expect("ASCII");
    assert_ne!(tampered_jwt, jwt);
    let tampered = original.replace(&jwt, &tampered_jwt);
    assert_err_contains(server.connect(&tampered), "-ERR 'Authorization Violation'");
    // The untampered creds still work, so the failure is the signature.
    connect(&server, "A", "U");
}

#[test]
fn system_user_can_connect() {
    let server = fixture_server();
    let mut sys = connect(&server, "SYS", "sys");
    sys.flush().expect("sys connection is healthy");
}

#[test]
fn request_reply_round_trip() {
    let server = fixture_server();
    // The fixture has no two distinct users that may talk to each other in
    // one account (worker may only reply, and nobody else may publish on
    // q.>), so two connections of U play requester and responder.
    let mut responder = connect(&server, "A", "U");
    responder.subscribe("a.echo").expect("subscribe a.echo");
    let responder = thread::spawn(move || {
        let request = responder
            .next_message(WAIT)
            .expect("a request arrives at the responder");
        let mut answer = b"echo:".to_vec();
        answer.extend_from_slice(&request.payload);
        responder.respond(&request, &answer).expect("respond");
        request
    });
    let mut requester = connect(&server, "A", "U");
    let reply = requester
        .request("a.echo", b"ping", WAIT)
        .expect("a reply arrives");
    assert_eq!(reply, b"echo:ping");
    let request = responder.join().expect("responder thread");
    assert_eq!(request.subject, "a.echo");
    assert!(request
        .reply
        .as_deref()
        .is_some_and(|r| r.starts_with("_INBOX.")));
}

#[test]
fn request_without_responder_times_out() {
    let server = fixture_server();
    let mut u = connect(&server, "A", "U");
    assert_err_contains(
        u.request("a.nobody", b"", Duration::from_millis(300)),
        "timed out",
    );
}

#[test]
#[should_panic(expected = "error parsing operator JWT")]
fn broken_config_fails_the_test_with_the_server_log() {
    NatsServer::start("operator: not-a-jwt\n");
}
