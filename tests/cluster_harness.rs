//! The cluster harness itself (tests/support/cluster.rs), on every server
//! version found: three nodes started from `natsform server-config` route
//! to each other; an account pushed to one node reaches every node's full
//! resolver; a stopped node keeps its directory, and after a restart its
//! resolver syncs what it missed within a bounded wait; a TLS cluster
//! starts with the test CA's certificates.

mod support;

use std::time::Duration;

use support::cli::Project;
use support::cluster::{Cluster, ClusterOptions, TestPki};
use support::nats::{self, Client};

/// How long a restarted node may take to sync (interval 1s, plus routes).
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

fn account(project: &Project, name: &str) -> (String, String) {
    let jwt = project.store_file(&format!("O2/accounts/{name}/{name}.jwt"));
    (nats::jwt_subject(&jwt), jwt)
}

/// Pushes `jwt` to the node with the SYS user; the number of servers that
/// answered "jwt updated" within a short wait.
fn push(sys: &mut Client, jwt: &str) -> usize {
    let inbox = "_INBOX.harness.push";
    let sid = sys.subscribe(inbox).expect("subscribe inbox");
    sys.publish_with_reply("$SYS.REQ.CLAIMS.UPDATE", inbox, jwt.as_bytes())
        .expect("publish update");
    let mut acks = 0;
    while let Some(msg) = sys.next_message(Duration::from_millis(1500)) {
        let reply: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(reply["data"]["code"], 200, "{reply}");
        acks += 1;
    }
    sys.unsubscribe(sid).unwrap();
    acks
}

#[test]
fn three_nodes_route_sync_and_survive_a_restart() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let sys_creds = project.creds("SYS/sys");
    let (a_pub, a_jwt) = account(&project, "A");
    let (sales_pub, sales_jwt) = account(&project, "sales");
    for binary in nats::nats_server_binaries() {
        let mut cluster = Cluster::start(&project, &binary, &ClusterOptions::default());
        let v = cluster.version().to_string();
        assert!(!v.is_empty());
        assert!(cluster.include().contains("allow_delete: true"));
        assert!(cluster.include().contains("interval: \"1s\""));

        // One push to n1: every node's resolver answers and stores it.
        let mut sys = cluster.node("n1").connect(&sys_creds).expect("SYS on n1");
        assert_eq!(push(&mut sys, &a_jwt), 3, "{v}: three acknowledgements");
        for node in ["n1", "n2", "n3"] {
            assert!(
                cluster.stored_accounts(node).contains(&a_pub),
                "{v}: {node} stores A"
            );
            let mut u = cluster
                .node(node)
                .connect(&project.creds("A/U"))
                .unwrap_or_else(|e| panic!("{v}: U on {node}: {e}"));
            u.publish("foo", b"x").unwrap();
        }

        // n3 down: two acknowledgements; its directory is kept.
        cluster.stop("n3");
        assert!(!cluster.node("n3").is_running());
        assert!(cluster.stored_accounts("n3").contains(&a_pub));
        assert_eq!(push(&mut sys, &sales_jwt), 2, "{v}: n3 is down");
        assert!(!cluster.stored_accounts("n3").contains(&sales_pub));

        // Back up on the same ports, it syncs what it missed.
        cluster.restart("n3");
        cluster.wait_for("n3 syncs sales", SYNC_TIMEOUT, || {
            cluster
                .stored_accounts("n3")
                .contains(&sales_pub)
                .then_some(())
        });
        let mut pam = cluster
            .node("n3")
            .connect(&project.creds("sales/pam"))
            .unwrap_or_else(|e| panic!("{v}: pam on n3: {e}"));
        pam.subscribe("sales.support.pam.x").unwrap();
        assert!(cluster.node("n3").log().contains("--- restarted ---"));
    }
}

#[test]
fn tls_cluster_starts_with_the_test_ca() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let pki = TestPki::new();
    assert_ne!(pki.ca_cert, pki.wrong_ca_cert);
    for binary in nats::nats_server_binaries() {
        let options = ClusterOptions {
            tls: Some(pki.clone()),
            verify_clients: true,
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start(&project, &binary, &options);
        for node in &cluster.nodes {
            let info = support::cluster::monitor(node.http_port, "/varz").unwrap();
            assert_eq!(info["tls_required"], true, "{}: {info}", node.name);
            assert_eq!(info["tls_verify"], true, "{}: {info}", node.name);
        }
        // A plain client is refused.
        let err = cluster
            .node("n1")
            .connect(&project.creds("A/U"))
            .expect_err("TLS is required");
        assert!(!err.is_empty());
    }
}
