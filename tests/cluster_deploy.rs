//! Deploying to a three-node cluster (issue 10, "How it must be shown"),
//! on every server version found (Debian's 2.9.10 and PyPI's newest): the
//! nodes run the config `natsform server-config` prints (full resolver,
//! `allow_delete: true`, a 1 s sync interval), routed to each other
//! (tests/support/cluster.rs); natsform pushes to one node and every node
//! serves what it pushed.
//!
//! - the walkthrough applied through n1: users authorized as declared on
//!   all three nodes; a second apply pushes nothing;
//! - a node down: apply succeeds against the two others (and, with
//!   `acks = 3`, fails naming each account that missed an acknowledgement);
//!   the node restarts and serves the new account and permissions within a
//!   bounded wait; `plan --live` is then empty;
//! - an account deleted from the manifest leaves every node (its users
//!   cannot connect); deleted while a node is down, it comes back when the
//!   node returns, `plan --live` shows it, and the next apply removes it;
//! - an account changed behind natsform's back shows as drift with a diff,
//!   and apply puts the store's version back;
//! - a TLS cluster with a test-made CA and client certificates; a wrong CA
//!   is a clear error.

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::cli::{Natsform, Project, Run};
use support::cluster::{Cluster, ClusterOptions, TestPki};
use support::nats::{self, Client};

/// Bound on waiting for a restarted node (or its peers) to sync: the sync
/// interval is 1 s; routes and a full pack exchange take a few more.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// A project with its own copy of the demo identity (mode 0600, so apply
/// prints no warning about it and snapshots name no path of this machine).
struct Deploy {
    project: Project,
    identity: tempfile::TempDir,
}

impl Deploy {
    /// The walkthrough, applied to the store (no server yet: it has no
    /// `resolver.urls`), plus `extra` appended to the manifest.
    fn walkthrough(extra: &str) -> Deploy {
        let text = fs::read_to_string(
            support::cli::repo_root().join("examples/walkthrough/natsform.toml"),
        )
        .unwrap();
        let project = Project::with_manifest("natsform.toml", &(text + extra));
        let identity = tempfile::tempdir().unwrap();
        let file = identity.path().join("identity.txt");
        fs::copy(support::cli::demo_identity(), &file).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let deploy = Deploy { project, identity };
        deploy.run(&["apply", "--auto-approve"]).success();
        deploy
    }

    fn natsform(&self, args: &[&str]) -> Natsform<'_> {
        self.project.natsform(args).env(
            "NATSFORM_AGE_IDENTITY",
            self.identity.path().join("identity.txt"),
        )
    }

    fn run(&self, args: &[&str]) -> Run {
        self.natsform(args).run()
    }

    /// `apply --auto-approve --push <url>`, asserting success.
    fn apply_to(&self, url: &str) -> Run {
        self.run(&["apply", "--auto-approve", "--push", url])
            .success()
    }

    fn creds(&self, user: &str) -> String {
        self.project.creds(user)
    }

    fn edit(&self, edit: impl FnOnce(String) -> String) {
        let text = fs::read_to_string(&self.project.manifest).unwrap();
        let edited = edit(text.clone());
        assert_ne!(text, edited, "the edit changes the manifest");
        fs::write(&self.project.manifest, edited).unwrap();
    }

    fn account_jwt(&self, name: &str) -> String {
        self.project
            .store_file(&format!("O2/accounts/{name}/{name}.jwt"))
    }

    fn account_key(&self, name: &str) -> String {
        nats::jwt_subject(&self.account_jwt(name))
    }
}

/// Snapshots a run of `invocation` (shared filters) with the cluster's
/// ports written as node names, so the text is the same on every run.
macro_rules! cluster_snapshot {
    ($name:expr, $cluster:expr, $invocation:expr) => {{
        let invocation = $invocation;
        let (text, run) = invocation.snapshot();
        insta::assert_snapshot!($name, ports_as_names(&$cluster, &text));
        run
    }};
}

/// `text` with the nodes' client ports written as node names, and the
/// shortened public keys (`ABCDEFGHIJKL…`) of accounts the lock no longer
/// binds (the shared filters name the others) as `<KEY…>`.
fn ports_as_names(cluster: &Cluster, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('…') {
        let head = &rest[..i];
        let key = head.len() >= 12
            && head.is_char_boundary(head.len() - 12)
            && head[head.len() - 12..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            && head[head.len() - 12..].starts_with(['A', 'O', 'U']);
        if key {
            out.push_str(&head[..head.len() - 12]);
            out.push_str("<KEY…>");
        } else {
            out.push_str(head);
            out.push('…');
        }
        rest = &rest[i + '…'.len_utf8()..];
    }
    out.push_str(rest);
    for node in &cluster.nodes {
        out = out.replace(
            &format!("127.0.0.1:{}", node.client_port),
            &format!("127.0.0.1:[{} port]", node.name),
        );
    }
    out
}

/// The walkthrough's users hold exactly their declared permissions on
/// `node` (a sample of each kind of rule).
fn assert_walkthrough_authorized(cluster: &Cluster, node: &str, deploy: &Deploy) {
    let v = format!("{node} of {}", cluster.version());
    let n = cluster.node(node);
    let connect = |user: &str| -> Client {
        n.connect(&deploy.creds(user))
            .unwrap_or_else(|e| panic!("{v}: {user} connects: {e}"))
    };
    let mut u = connect("A/U");
    u.publish("foo", b"x")
        .unwrap_or_else(|e| panic!("{v}: U publishes: {e}"));
    let mut worker = connect("A/worker");
    worker
        .subscribe("q.work")
        .unwrap_or_else(|e| panic!("{v}: worker subscribes q.work: {e}"));
    let err = worker
        .publish("foo", b"x")
        .expect_err("the service role denies publishing");
    assert!(err.contains("Permissions Violation"), "{v}: {err}");
    let mut pam = connect("sales/pam");
    pam.subscribe("sales.support.pam.x")
        .unwrap_or_else(|e| panic!("{v}: pam's own subject: {e}"));
    let err = pam
        .subscribe("sales.leads.joe.x")
        .expect_err("pam must not read joe's subjects");
    assert!(err.contains("Permissions Violation"), "{v}: {err}");
    let mut joe = connect("sales/joe");
    joe.subscribe("sales.leads.joe.x")
        .unwrap_or_else(|e| panic!("{v}: joe's own subject: {e}"));
}

/// Every node's resolver files with their bytes and modification times.
fn resolver_files(cluster: &Cluster) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut out = Vec::new();
    for node in &cluster.nodes {
        for entry in fs::read_dir(node.jwt_dir()).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            out.push((
                path.clone(),
                fs::read(&path).unwrap(),
                meta.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// Whether a user of `creds` may connect to `node`.
fn can_connect(cluster: &Cluster, node: &str, creds: &str) -> bool {
    cluster.node(node).connect(creds).is_ok()
}

#[test]
fn walkthrough_through_one_node_reaches_all_three_and_a_second_apply_pushes_nothing() {
    let deploy = Deploy::walkthrough("");
    for binary in nats::nats_server_binaries().iter() {
        let cluster = Cluster::start(&deploy.project, binary, &ClusterOptions::default());
        let url = cluster.node("n1").url();
        cluster_snapshot!(
            "first_apply",
            cluster,
            deploy.natsform(&["apply", "--auto-approve", "--push", &url])
        );
        for node in ["n1", "n2", "n3"] {
            assert_walkthrough_authorized(&cluster, node, &deploy);
        }
        let before = resolver_files(&cluster);
        let run = cluster_snapshot!(
            "second_apply",
            cluster,
            deploy.natsform(&["apply", "--auto-approve", "--push", &url])
        );
        assert_eq!(run.code, 0);
        assert_eq!(
            before,
            resolver_files(&cluster),
            "{}: a second apply changes no resolver file",
            cluster.version()
        );
        // The per-server result for pipelines: nothing pushed.
        let run = deploy
            .run(&["apply", "--auto-approve", "--json", "--push", &url])
            .success();
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["ok"], true, "{doc}");
        assert_eq!(doc["deploy"], serde_json::json!([]), "{doc}");
        // The next version's apply starts from the same store: redeploying
        // it to fresh servers is the first apply again.
        drop(cluster);
    }
}

#[test]
fn a_node_down_during_apply_catches_up_when_it_returns() {
    let deploy = Deploy::walkthrough("");
    let manifest = fs::read_to_string(&deploy.project.manifest).unwrap();
    for binary in nats::nats_server_binaries().iter() {
        // Each server version starts from the walkthrough (no resolver
        // table: this apply writes the store only).
        fs::write(&deploy.project.manifest, &manifest).unwrap();
        deploy.run(&["apply", "--auto-approve"]).success();
        let mut cluster = Cluster::start(&deploy.project, binary, &ClusterOptions::default());
        let v = cluster.version().to_string();
        let url = cluster.node("n1").url();
        deploy.apply_to(&url);

        cluster.stop("n3");
        // A new account and a role that may now also read `r.>`.
        let new = "new";
        deploy.edit(|t| {
            t.replace(
                "sub = { allow = [\"q.>\"] }",
                "sub = { allow = [\"q.>\", \"r.>\"] }",
            ) + &format!("\n[operators.O2.accounts.{new}.users.nu]\n")
        });
        // Every node named: natsform knows three are expected, so the one
        // that is down is reported (by default it counts the servers that
        // answer PING, and a stopped node answers nothing).
        let (u2, u3) = (cluster.node("n2").url(), cluster.node("n3").url());
        let run = cluster_snapshot!(
            "two_of_three",
            cluster,
            deploy.natsform(&[
                "apply",
                "--auto-approve",
                "--push",
                &url,
                "--push",
                &u2,
                "--push",
                &u3
            ])
        );
        assert_eq!(run.code, 0, "{v}: two servers answer, both acknowledge");
        assert!(
            run.stderr
                .contains("2 servers answered $SYS.REQ.SERVER.PING")
                && run.stderr.contains("the URLs name 3"),
            "{v}: the missing node is reported: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("server n1: 2 of 2 acknowledged"),
            "{v}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("server n3"), "{v}: {}", run.stderr);

        // Requiring three acknowledgements: the same situation is a
        // failure naming each account, with what was acknowledged; the
        // store is written all the same.
        deploy.edit(|t| {
            t.replace(
                "service_urls = [\"nats://localhost:4222\"]",
                &format!("service_urls = [\"nats://localhost:4222\"]\nresolver = {{ urls = [\"{url}\"], acks = 3 }}"),
            )
            .replace("resp = { max = 1 }\n\n[operators.O2.accounts.A.users.U]", "resp = { max = 2 }\n\n[operators.O2.accounts.A.users.U]")
        });
        let run = cluster_snapshot!(
            "acks_missing",
            cluster,
            deploy.natsform(&["apply", "--auto-approve"])
        );
        assert_eq!(run.code, 1, "{v}: too few acknowledgements");
        assert!(!run.stderr.contains("panicked"), "{v}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("account.O2/A: 2 of 3 servers acknowledged the update"),
            "{v}: {}",
            run.stderr
        );
        assert!(
            deploy.account_jwt("A").contains('.')
                && nats::jwt_claims(&deploy.account_jwt("A"))
                    .to_string()
                    .contains("\"max\":2"),
            "{v}: the store holds the new A"
        );

        // n3 returns and syncs: the new account's user connects there, the
        // role's new permission holds there.
        cluster.restart("n3");
        let nu = deploy.creds(&format!("{new}/nu"));
        cluster.wait_for("n3 serves the new account", SYNC_TIMEOUT, || {
            can_connect(&cluster, "n3", &nu).then_some(())
        });
        let worker = deploy.creds("A/worker");
        cluster.wait_for("n3 serves the new role permission", SYNC_TIMEOUT, || {
            let mut c = cluster.node("n3").connect(&worker).ok()?;
            c.subscribe("r.x").ok()
        });
        // …and holds the A that only n1 and n2 acknowledged.
        let (a, stored_a) = (deploy.account_key("A"), deploy.account_jwt("A"));
        cluster.wait_for("n3 holds the store's A", SYNC_TIMEOUT, || {
            let held = fs::read_to_string(cluster.node("n3").jwt_dir().join(format!("{a}.jwt")));
            (held.ok()? == stored_a).then_some(())
        });
        assert_walkthrough_authorized(&cluster, "n3", &deploy);
        // Every node holds what the store holds: the live plan is empty.
        let n3 = cluster.node("n3").url();
        let run = cluster_snapshot!(
            "live_after_restart",
            cluster,
            deploy.natsform(&["plan", "--live", "--detailed-exitcode", "--push", &n3])
        );
        assert_eq!(run.code, 0, "{v}: nothing to do");
    }
}

#[test]
fn deleted_accounts_leave_every_node_and_a_missed_delete_is_repaired() {
    let deploy = Deploy::walkthrough("\n[operators.O2.accounts.temp.users.t]\n");
    let sales_block = "[operators.O2.accounts.sales.signing_keys.team-service]\nsub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\"] }\nresp = { max = 1 }\n\n[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:support\"]\n\n[operators.O2.accounts.sales.users.joe]\nsigner = \"team-service\"\ntags = [\"team:leads\"]\n";
    let manifest = fs::read_to_string(&deploy.project.manifest).unwrap();
    assert!(
        manifest.contains(sales_block),
        "the walkthrough's sales block"
    );
    for binary in nats::nats_server_binaries().iter() {
        // Start from the full manifest again (the store re-creates what a
        // previous version's round deleted; its keys are new).
        fs::write(&deploy.project.manifest, &manifest).unwrap();
        deploy.run(&["apply", "--auto-approve"]).success();
        let (sales, temp) = (deploy.account_key("sales"), deploy.account_key("temp"));
        let (pam, t) = (deploy.creds("sales/pam"), deploy.creds("temp/t"));
        let mut cluster = Cluster::start(&deploy.project, binary, &ClusterOptions::default());
        let v = cluster.version().to_string();
        let url = cluster.node("n1").url();
        deploy.apply_to(&url);
        for node in ["n1", "n2", "n3"] {
            assert!(can_connect(&cluster, node, &pam), "{v}: pam on {node}");
        }

        // Deleting `sales` from the manifest deletes it on every node.
        deploy.edit(|t| t.replace(sales_block, ""));
        let run = cluster_snapshot!(
            "delete_sales",
            cluster,
            deploy.natsform(&["apply", "--auto-approve", "--allow-destroy", "--push", &url])
        );
        assert_eq!(run.code, 0, "{v}");
        for node in ["n1", "n2", "n3"] {
            assert!(
                !cluster.stored_accounts(node).contains(&sales),
                "{v}: {node} no longer holds sales"
            );
            assert!(
                !can_connect(&cluster, node, &pam),
                "{v}: pam refused on {node}"
            );
        }

        // `temp` deleted while n3 is down: n3 returns still holding it, and
        // the resolvers' sync carries it back to n1 and n2.
        cluster.stop("n3");
        deploy.edit(|text| text.replace("\n[operators.O2.accounts.temp.users.t]\n", "\n"));
        deploy.apply_to(&url);
        assert!(!cluster.stored_accounts("n1").contains(&temp), "{v}");
        assert!(!can_connect(&cluster, "n1", &t), "{v}: t refused on n1");
        cluster.restart("n3");
        // (Each node asks one peer at a time for what it lacks: wait until
        // the sync has reached all three.)
        cluster.wait_for("temp comes back to every node", SYNC_TIMEOUT, || {
            ["n1", "n2", "n3"]
                .iter()
                .all(|n| cluster.stored_accounts(n).contains(&temp))
                .then_some(())
        });
        let run = cluster_snapshot!(
            "returned",
            cluster,
            deploy.natsform(&["plan", "--live", "--detailed-exitcode", "--push", &url])
        );
        assert_eq!(run.code, 2, "{v}: the live plan has work");
        assert!(
            run.stdout.contains("account.O2/temp"),
            "{v}: {}",
            run.stdout
        );

        // The next apply deletes it again, from every node.
        deploy.apply_to(&url);
        for node in ["n1", "n2", "n3"] {
            assert!(
                !cluster.stored_accounts(node).contains(&temp),
                "{v}: {node} no longer holds temp"
            );
            assert!(!can_connect(&cluster, node, &t), "{v}: t refused on {node}");
        }
        let run = deploy.run(&["plan", "--live", "--detailed-exitcode", "--push", &url]);
        assert_eq!(run.code, 0, "{v}: {}\n{}", run.stdout, run.stderr);
    }
}

/// Copies every file of `from`'s project into a new project.
fn copy_project(from: &Project) -> Project {
    let copy = Project::with_manifest("natsform.toml", "");
    for (relative, bytes) in from.files() {
        let path = copy.path().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    copy
}

#[test]
fn an_account_changed_behind_natsforms_back_shows_as_drift() {
    let deploy = Deploy::walkthrough("");
    for binary in nats::nats_server_binaries().iter() {
        let cluster = Cluster::start(&deploy.project, binary, &ClusterOptions::default());
        let v = cluster.version().to_string();
        let url = cluster.node("n1").url();
        deploy.apply_to(&url);

        // Someone with the operator's keys (a copy of the project) issues
        // another version of A and pushes it by hand.
        let other = copy_project(&deploy.project);
        let text = fs::read_to_string(&other.manifest).unwrap();
        fs::write(
            &other.manifest,
            text.replace(
                "[operators.O2.accounts.A.signing_keys.main]",
                "[operators.O2.accounts.A]\ndescription = \"changed by hand\"\n\n[operators.O2.accounts.A.signing_keys.main]",
            ),
        )
        .unwrap();
        other
            .run(&["apply", "--auto-approve", "--no-push"])
            .success();
        let drifted = other.store_file("O2/accounts/A/A.jwt");
        assert_ne!(drifted, deploy.account_jwt("A"));
        let mut sys = cluster
            .node("n2")
            .connect(&deploy.creds("SYS/sys"))
            .unwrap();
        let reply = sys
            .request(
                "$SYS.REQ.CLAIMS.UPDATE",
                drifted.as_bytes(),
                nats::DEFAULT_TIMEOUT,
            )
            .unwrap();
        assert!(
            String::from_utf8_lossy(&reply).contains("jwt updated"),
            "{v}"
        );
        let a = deploy.account_key("A");
        cluster.wait_for("every node holds the hand-made A", SYNC_TIMEOUT, || {
            cluster
                .nodes
                .iter()
                .all(|n| {
                    fs::read_to_string(n.jwt_dir().join(format!("{a}.jwt")))
                        .ok()
                        .as_deref()
                        == Some(drifted.as_str())
                })
                .then_some(())
        });

        let run = cluster_snapshot!(
            "drift",
            cluster,
            deploy.natsform(&["plan", "--live", "--push", &url])
        );
        assert!(
            run.stdout.contains("changed by hand"),
            "{v}: the diff shows it\n{}",
            run.stdout
        );

        // Apply puts the store's version back on every node.
        deploy.apply_to(&url);
        let ours = deploy.account_jwt("A");
        for node in &cluster.nodes {
            assert_eq!(
                fs::read_to_string(node.jwt_dir().join(format!("{a}.jwt"))).unwrap(),
                ours,
                "{v}: {} holds the store's A again",
                node.name
            );
        }
        let run = deploy.run(&["plan", "--live", "--detailed-exitcode", "--push", &url]);
        assert_eq!(run.code, 0, "{v}: {}", run.stdout);
    }
}

#[test]
fn tls_cluster_with_the_test_ca_and_a_wrong_ca() {
    let deploy = Deploy::walkthrough("");
    let pki = TestPki::new();
    let client = tempfile::tempdir().unwrap();
    let files = pki.write_client_files(client.path());
    let file = |name: &str| files.join(name).to_str().unwrap().to_string();
    for binary in nats::nats_server_binaries().iter() {
        let options = ClusterOptions {
            tls: Some(pki.clone()),
            verify_clients: true,
            ..ClusterOptions::default()
        };
        let cluster = Cluster::start(&deploy.project, binary, &options);
        let v = cluster.version().to_string();
        let url = format!("tls://127.0.0.1:{}", cluster.node("n1").client_port);
        let tls = |ca: &str| {
            vec![
                "--push".to_string(),
                url.clone(),
                "--tls-ca".to_string(),
                file(ca),
                "--tls-cert".to_string(),
                file("client-cert.pem"),
                "--tls-key".to_string(),
                file("client-key.pem"),
            ]
        };

        // The wrong CA: a clear error, nothing pushed.
        let mut args = vec!["plan".to_string(), "--live".to_string()];
        args.extend(tls("wrong-ca.pem"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = deploy.natsform(&args).run().failure();
        let shown = ports_as_names(&cluster, &run.stderr)
            .replace(client.path().to_str().unwrap(), "[CLIENT]");
        insta::assert_snapshot!("wrong_ca", shown);

        // The right CA and a client certificate: pushed to every node.
        let mut args = vec!["apply".to_string(), "--auto-approve".to_string()];
        args.extend(tls("ca.pem"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = deploy.natsform(&args).run().success();
        for node in ["n1", "n2", "n3"] {
            assert!(
                run.stderr
                    .contains(&format!("server {node}: 2 of 2 acknowledged")),
                "{v}: {}",
                run.stderr
            );
            assert!(
                cluster
                    .stored_accounts(node)
                    .contains(&deploy.account_key("A")),
                "{v}"
            );
        }
    }
}
