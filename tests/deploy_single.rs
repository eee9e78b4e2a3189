//! Deploying to one real nats-server with a full (nats-based) resolver, on
//! every server version found (Debian's 2.9.10 and PyPI's newest): apply
//! pushes the accounts it changes, users connect with natsform's creds, a
//! second apply pushes nothing, deletions reach the server, and every
//! failure (a rejected JWT, no server, a memory resolver, a resolver that
//! does not allow deletes) exits non-zero with a clear message and loses
//! nothing. Every wait is bounded (the server's start, natsform's request
//! timeouts).

mod support;

use std::path::Path;

use support::cli::{Project, Run};
use support::nats::{self, NatsServer};

/// The walkthrough up to its system account: the part a server is
/// configured with before anything is pushed.
fn walkthrough_sys_only() -> String {
    let text = std::fs::read_to_string(
        support::cli::repo_root().join("examples/walkthrough/natsform.toml"),
    )
    .unwrap();
    let cut = text.find("[operators.O2.accounts.A.").expect("account A");
    text[..cut].to_string()
}

fn walkthrough() -> String {
    std::fs::read_to_string(support::cli::repo_root().join("examples/walkthrough/natsform.toml"))
        .unwrap()
}

/// The walkthrough without account `sales` (its last account).
fn walkthrough_without_sales() -> String {
    let text = walkthrough();
    let cut = text
        .find("[operators.O2.accounts.sales.")
        .expect("account sales");
    text[..cut].to_string()
}

/// A project holding the walkthrough's operator and system account in its
/// store (applied without pushing), and a full-resolver server trusting it.
fn project_and_server(binary: &Path, allow_delete: bool) -> (Project, NatsServer) {
    let project = Project::with_manifest("natsform.toml", &walkthrough_sys_only());
    project
        .run(&["apply", "--auto-approve", "--no-push"])
        .success();
    let server = NatsServer::start_binary_with(binary, |dir| {
        project.full_resolver_config("O2", "n1", dir, allow_delete)
    });
    (project, server)
}

fn set_manifest(project: &Project, text: &str) {
    std::fs::write(&project.manifest, text).unwrap();
}

/// Adds `[operators.O2.resolver] urls = [url]` to the manifest text.
fn with_resolver(text: &str, url: &str) -> String {
    format!("{text}\n[operators.O2.resolver]\nurls = [\"{url}\"]\nrequest_timeout = \"2s\"\n")
}

/// The files of the project, without the run lock.
fn files(project: &Project) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    project.files()
}

/// A run as a snapshot: the port of the test's server as `[PORT]`, and
/// without the warning about the demo identity's file mode (its path is
/// this machine's).
fn snapshot(run: &Run, project: &Project, port: u16) -> String {
    run.snapshot(project)
        .replace(&format!(":{port}"), ":[PORT]")
        .lines()
        .filter(|l| !l.contains("demo-identity.txt"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn apply(project: &Project, extra: &[&str]) -> Run {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    project.run(&args)
}

/// [`project_and_server`] with the whole walkthrough applied and pushed to
/// the server; also the server's version, for messages.
fn deployed(binary: &Path, allow_delete: bool) -> (Project, NatsServer, String) {
    let (project, server) = project_and_server(binary, allow_delete);
    let v = server.version().to_string();
    set_manifest(&project, &with_resolver(&walkthrough(), &server.url()));
    apply(&project, &[]).success();
    (project, server, v)
}

/// Asserts that server n1 acknowledged `n` of the `n` accounts pushed.
fn assert_acked(run: &Run, n: usize, v: &str) {
    let line = format!("server n1: {n} of {n} acknowledged");
    assert!(run.stderr.contains(&line), "{v}: {}", run.stderr);
}

/// Pushes `jwt` as a system user, as nsc or a stranger would, and asserts
/// the server stored it.
fn push_jwt(sys: &mut nats::Client, jwt: &str, v: &str) {
    let reply = sys
        .request(
            "$SYS.REQ.CLAIMS.UPDATE",
            jwt.as_bytes(),
            nats::DEFAULT_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{v}: pushing a JWT: {e}"));
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("jwt updated"), "{v}: {reply}");
}

#[test]
fn apply_pushes_the_walkthrough_users_connect_and_a_second_apply_pushes_nothing() {
    for binary in nats::nats_server_binaries() {
        let (project, server) = project_and_server(&binary, true);
        let v = server.version().to_string();
        // The accounts are declared after the server started: apply pushes
        // what it creates, to the servers of `resolver.urls`.
        set_manifest(&project, &with_resolver(&walkthrough(), &server.url()));
        let run = apply(&project, &[]).success();
        assert!(
            run.stderr
                .contains("Pushing 2 accounts to the servers of operator O2"),
            "{v}: {}",
            run.stderr
        );
        assert_acked(&run, 2, &v);
        let listed: Vec<String> = std::fs::read_dir(server.dir().join("jwt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(listed.len(), 3, "{v}: SYS, A and sales stored: {listed:?}");

        // Users connect with the permissions declared.
        let mut w = server.connect_ok(&project.creds("A/worker"));
        w.subscribe("q.work")
            .unwrap_or_else(|e| panic!("{v}: worker: {e}"));
        let err = w.publish("foo", b"x").expect_err("worker may not publish");
        assert!(err.contains("Permissions Violation"), "{v}: {err}");
        let pam = project.creds("sales/pam");
        let mut p = server.connect_ok(&pam);
        p.subscribe("sales.support.pam.x")
            .unwrap_or_else(|e| panic!("{v}: pam: {e}"));
        drop(p);

        // A second apply pushes nothing.
        let again = apply(&project, &[]).success();
        assert!(!again.stderr.contains("Pushing"), "{v}: {}", again.stderr);
        assert!(
            again.stdout.contains("No changes."),
            "{v}: {}",
            again.stdout
        );

        // A role change re-issues account A: pushed, and enforced.
        set_manifest(
            &project,
            &with_resolver(&walkthrough(), &server.url())
                .replace("sub = { allow = [\"q.>\"] }", "sub = { allow = [\"r.>\"] }"),
        );
        let run = apply(&project, &["--json"]).success();
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
        assert_eq!(doc["ok"], true, "{v}: {doc}");
        assert_eq!(doc["deploy"][0]["operator"], "O2");
        assert_eq!(doc["deploy"][0]["acks_needed"], 1);
        assert_eq!(doc["deploy"][0]["servers"][0]["name"], "n1");
        assert_eq!(doc["deploy"][0]["accounts"][0]["address"], "account.O2/A");
        assert_eq!(doc["deploy"][0]["accounts"][0]["request"], "update");
        assert_eq!(doc["deploy"][0]["accounts"][0]["acknowledged"][0], "n1");
        let mut w = server.connect_ok(&project.creds("A/worker"));
        w.subscribe("r.work")
            .unwrap_or_else(|e| panic!("{v}: the pushed role applies: {e}"));
        let err = w
            .subscribe("q.work")
            .expect_err("the old role no longer applies");
        assert!(err.contains("Permissions Violation"), "{v}: {err}");

        // Deleting account sales removes it from the server: pam is refused.
        set_manifest(
            &project,
            &with_resolver(&walkthrough_without_sales(), &server.url())
                .replace("sub = { allow = [\"q.>\"] }", "sub = { allow = [\"r.>\"] }"),
        );
        let run = apply(&project, &[]).success();
        assert_acked(&run, 1, &v);
        let err = server
            .connect(&pam)
            .expect_err("a deleted account's users are refused");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
    }
}

#[test]
fn a_rejected_jwt_exits_non_zero_with_the_servers_reason_and_keeps_the_store() {
    for binary in nats::nats_server_binaries() {
        // The server trusts an operator with strict signing-key usage…
        let strict = walkthrough_sys_only()
            .replace("signing_keys = [\"ops\"]", "signing_keys = [\"ops\"]\nstrict_signing_key_usage = true")
            .replace(
                "[operators.O2.accounts.SYS.users.sys]",
                "[operators.O2.accounts.SYS.signing_keys.deploy]\n\n[operators.O2.accounts.SYS.users.sys]\nsigner = \"deploy\"",
            );
        let project = Project::with_manifest("natsform.toml", &strict);
        apply(&project, &["--no-push"]).success();
        let server = NatsServer::start_binary_with(&binary, |dir| {
            project.full_resolver_config("O2", "n1", dir, true)
        });
        let v = server.version().to_string();
        let creds = project.path().join("sys.creds");
        std::fs::write(&creds, project.creds("SYS/sys")).unwrap();
        // …and the manifest drops strictness and the operator signing key:
        // natsform signs the accounts with the operator's identity key,
        // which this server refuses (it checks strictness at push time).
        let loose = strict
            .replace("strict_signing_key_usage = true\n", "")
            .replace("signing_keys = [\"ops\"]\n", "");
        set_manifest(&project, &loose);
        let url = server.url();
        let run = apply(
            &project,
            &["--push", &url, "--creds", creds.to_str().unwrap()],
        )
        .failure();
        let shown =
            snapshot(&run, &project, server.port()).replace(creds.to_str().unwrap(), "[CREDS]");
        let stderr = &shown[shown.find("----- stderr -----").unwrap()..];
        insta::assert_snapshot!("rejected", stderr);
        // Nothing lost: the store holds what apply signed, the vault every seed.
        let plan = project.run(&["plan"]).success();
        assert!(plan.stdout.contains("No changes."), "{v}: {}", plan.stdout);
        let seeds = std::fs::read_dir(project.path().join("vault"))
            .unwrap()
            .count();
        assert!(seeds >= 4, "{v}: the vault keeps its seeds ({seeds})");
    }
}

#[test]
fn an_unreachable_server_is_named_and_nothing_changes() {
    let project = Project::with_manifest("natsform.toml", &walkthrough_sys_only());
    apply(&project, &["--no-push"]).success();
    set_manifest(&project, &walkthrough());
    let before = files(&project);
    let port = nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let run = apply(&project, &["--push", &url]).failure();
    insta::assert_snapshot!(snapshot(&run, &project, port));
    assert_eq!(files(&project), before, "nothing was written");
}

#[test]
fn a_memory_resolver_is_named_with_what_to_do() {
    for binary in nats::nats_server_binaries() {
        let project = Project::with_manifest("natsform.toml", &walkthrough());
        apply(&project, &["--no-push"]).success();
        let config = format!("server_name: m1\n{}", project.memory_resolver_config("O2"));
        let server = NatsServer::start_binary_with(&binary, |_| config);
        let url = server.url();
        let run = project.run(&["plan", "--live", "--push", &url]).failure();
        insta::assert_snapshot!("memory_resolver", snapshot(&run, &project, server.port()));
    }
}

#[test]
fn a_resolver_without_allow_delete_is_named_with_what_to_do() {
    for binary in nats::nats_server_binaries() {
        let (project, server, v) = deployed(&binary, false);
        set_manifest(
            &project,
            &with_resolver(&walkthrough_without_sales(), &server.url()),
        );
        let run = apply(&project, &[]).failure();
        insta::assert_snapshot!("no_allow_delete", snapshot(&run, &project, server.port()));
        // The store is written all the same: sales is gone from it.
        assert!(
            !project.path().join("store/O2/accounts/sales").exists(),
            "{v}"
        );
    }
}

#[test]
fn a_store_applied_without_pushing_is_deployed_by_the_next_apply() {
    for binary in nats::nats_server_binaries() {
        let (project, server) = project_and_server(&binary, true);
        let v = server.version().to_string();
        // Everything is applied to the store only, then the servers are read.
        set_manifest(&project, &walkthrough());
        apply(&project, &["--no-push"]).success();
        let url = server.url();
        let plan = project
            .run(&["plan", "--live", "--push", &url, "--detailed-exitcode"])
            .no_secrets_shown(&[]);
        assert_eq!(
            plan.code, 2,
            "{v}: the servers lack A and sales: {}",
            plan.stdout
        );
        assert!(plan.stdout.contains("account.O2/A"), "{v}: {}", plan.stdout);
        assert!(
            plan.stdout.contains("account.O2/sales"),
            "{v}: {}",
            plan.stdout
        );
        // apply pushes what the servers lack, though the store has no
        // change: also when it applies a plan saved without --live (the
        // saved plan fixes the store's part; the push follows the servers).
        let saved = project.path().join("saved.json");
        project
            .run(&["plan", "--out", saved.to_str().unwrap()])
            .success();
        let run = project
            .run(&["apply", saved.to_str().unwrap(), "--push", &url])
            .success();
        assert_acked(&run, 2, &v);
        server.connect_ok(&project.creds("sales/joe"));
        // And then the servers hold the store: nothing to plan or push.
        project
            .run(&["plan", "--live", "--push", &url, "--detailed-exitcode"])
            .success();
        // `plan --live` signs with a system-account seed and connects where
        // the manifest says: it parses the manifest though a plan just
        // remembered this text's model (tests/parsed_cache.rs).
        let plain = project
            .natsform(&["plan"])
            .env("NATSFORM_DEBUG_MANIFEST", "1")
            .run()
            .success();
        assert!(
            plain.stderr.contains("natsform: manifest: remembered"),
            "{v}: {}",
            plain.stderr
        );
        let live = project
            .natsform(&["plan", "--live", "--push", &url])
            .env("NATSFORM_DEBUG_MANIFEST", "1")
            .run()
            .success();
        assert!(
            live.stderr.contains("natsform: manifest: parsed"),
            "{v}: {}",
            live.stderr
        );
        let again = apply(&project, &["--push", &url]).success();
        assert!(!again.stderr.contains("Pushing"), "{v}: {}", again.stderr);
    }
}

#[test]
fn an_account_changed_behind_natsforms_back_shows_as_drift_and_apply_restores_it() {
    use natsform::claims::{self, Account};
    use natsform::keys::{generate, KeyKind};
    for binary in nats::nats_server_binaries() {
        let (project, server, v) = deployed(&binary, true);
        let stored = project.store_file("O2/accounts/A/A.jwt");

        // Someone pushes their own version of A, signed by a key of theirs:
        // the full resolver stores it (no issuer check at push time).
        let mut forged = claims::decode_as::<Account>(&stored).unwrap();
        forged.data.iat += 10;
        forged.nats.description = "changed behind natsform's back".into();
        let stranger = generate(KeyKind::Operator);
        let forged = claims::encode(&mut forged, &stranger).unwrap();
        let mut sys = server.connect_ok(&project.creds("SYS/sys"));
        push_jwt(&mut sys, &forged, &v);
        let a = nats::jwt_subject(&stored);
        let on_server =
            || std::fs::read_to_string(server.dir().join(format!("jwt/{a}.jwt"))).unwrap();
        assert_eq!(on_server(), forged, "{v}");

        // plan --live shows it, as a claims diff.
        let plan = project.run(&["plan", "--live"]).success();
        insta::assert_snapshot!(
            "drift",
            snapshot(&plan, &project, server.port())
                .replace(&stranger.public_key()[..12], "<STRANGER>")
        );

        // apply pushes the store's version back.
        let run = apply(&project, &[]).success();
        assert_acked(&run, 1, &v);
        assert_eq!(on_server(), stored, "{v}: the store's JWT is back");
    }
}

#[test]
fn too_few_acknowledgements_fail_after_bounded_retries() {
    for binary in nats::nats_server_binaries() {
        let (project, server) = project_and_server(&binary, true);
        let v = server.version().to_string();
        // Two servers must acknowledge; there is one.
        let manifest = format!(
            "{}\n[operators.O2.resolver]\nurls = [\"{}\"]\nrequest_timeout = \"300ms\"\nacks = 2\n",
            walkthrough(),
            server.url()
        );
        set_manifest(&project, &manifest);
        let started = std::time::Instant::now();
        let run = apply(&project, &[]).failure();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{v}: retries are bounded"
        );
        insta::assert_snapshot!("too_few_acks", {
            let s = snapshot(&run, &project, server.port());
            s[s.find("----- stderr -----").unwrap()..].to_string()
        });
        // The one server has the accounts all the same.
        server.connect_ok(&project.creds("A/U"));
    }
}

#[test]
fn a_hostile_responder_on_the_system_subjects_is_read_defensively() {
    for binary in nats::nats_server_binaries() {
        let (project, server, v) = deployed(&binary, true);
        let a = nats::jwt_subject(&project.store_file("O2/accounts/A/A.jwt"));

        // A system-account client that answers like a server, with control
        // characters, junk keys and a LOOKUP reply that is no JWT.
        let mut rogue = server.connect_ok(&project.creds("SYS/sys"));
        for subject in [
            "$SYS.REQ.SERVER.PING",
            "$SYS.REQ.CLAIMS.LIST",
            "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
        ] {
            rogue.subscribe(subject).unwrap();
        }
        let evil = r#"{"name":"evil\u001b]0;owned\u0007\u001b[2J","id":"NEVIL"}"#;
        let child = project.natsform(&["plan", "--live"]).spawn();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut child = child;
        while child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "{v}: plan --live must finish"
            );
            let Some(msg) = rogue.next_message(std::time::Duration::from_millis(50)) else {
                continue;
            };
            let payload = if msg.subject.ends_with("PING") {
                format!(r#"{{"server":{evil},"statsz":{{}}}}"#)
            } else if msg.subject.ends_with("LIST") {
                format!(r#"{{"server":{evil},"data":["{a}","junk\u001b[31m",7]}}"#)
            } else {
                "not a JWT \u{1b}[2J".to_string()
            };
            if msg.reply.is_some() {
                rogue.respond(&msg, payload.as_bytes()).unwrap();
            }
        }
        let run = Run::from_child(child);
        assert!(
            matches!(run.code, 0 | 2),
            "{v}: the plan is made despite the rogue: {}{}",
            run.stdout,
            run.stderr
        );
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}'),
                "{v}: a control character reached the output:\n{text}"
            );
        }
        assert!(
            run.stdout.contains("evil"),
            "{v}: the rogue is shown: {}",
            run.stdout
        );
    }
}

#[test]
fn a_listed_server_that_is_down_is_noted_and_the_others_get_the_push() {
    for binary in nats::nats_server_binaries() {
        let (project, server) = project_and_server(&binary, true);
        let v = server.version().to_string();
        let down = nats::free_port();
        let manifest = format!(
            "{}\n[operators.O2.resolver]\nurls = [\"nats://127.0.0.1:{down}\", \"{}\"]\nconnect_timeout = \"1s\"\n",
            walkthrough(),
            server.url()
        );
        set_manifest(&project, &manifest);
        let run = apply(&project, &[]).success();
        assert!(
            run.stderr.contains(
                "1 server answered $SYS.REQ.SERVER.PING (n1), and the URLs name 2: a server may be down"
            ),
            "{v}: {}",
            run.stderr
        );
        assert_acked(&run, 2, &v);
    }
}

#[test]
fn a_server_unreachable_after_the_store_is_written_says_so_and_the_next_apply_finishes() {
    // A first apply: the lock binds no system-account key yet, so no server
    // is read before planning, and the connection is first opened in step
    // 8, after the store is written.
    let project = Project::with_manifest("natsform.toml", &walkthrough());
    let port = nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let run = apply(&project, &["--push", &url]).failure();
    // The plan on stdout is the walkthrough's; what matters is stderr.
    let whole = snapshot(&run, &project, port);
    let stderr = &whole[whole.find("----- stderr -----").unwrap()..];
    insta::assert_snapshot!(stderr);
    assert!(
        !run.stderr.contains("--no-push"),
        "the store is written: --no-push is no advice now: {}",
        run.stderr
    );
    assert!(
        project.dir.path().join("natsform.lock").exists(),
        "the store and lock are written"
    );
    // What the error promises: the next apply (against a server that
    // answers) pushes what was not deployed.
    for binary in nats::nats_server_binaries() {
        let server = NatsServer::start_binary_with(&binary, |dir| {
            project.full_resolver_config("O2", "n1", dir, true)
        });
        let v = server.version().to_string();
        let again = apply(&project, &["--push", &server.url()]).success();
        assert_acked(&again, 2, &v);
        let mut w = server.connect_ok(&project.creds("A/worker"));
        w.subscribe("q.work")
            .unwrap_or_else(|e| panic!("{v}: worker: {e}"));
    }
}

/// A server can hold accounts of several operators (a full resolver stores
/// whatever a system user pushes; a server can trust several operators),
/// and a DELETE signed by this operator removes whatever account it names:
/// `--prune` deletes only what this operator issued.
#[test]
fn prune_deletes_only_accounts_this_operator_issued() {
    use natsform::claims::{self, AccountClaims};
    use natsform::keys::{generate, Identities, IdentitySources, KeyKind, KeyPair, Vault};
    for binary in nats::nats_server_binaries() {
        let (project, server, v) = deployed(&binary, true);
        // O2's signing key (it signs the walkthrough's accounts), from the vault.
        let stored = project.store_file("O2/accounts/A/A.jwt");
        let ops = claims::verify_envelope(&stored).unwrap().iss;
        let ids = Identities::load(&IdentitySources {
            paths: vec![support::cli::demo_identity()],
            ..Default::default()
        })
        .unwrap();
        let ops = Vault::new(project.path().join("vault"))
            .get(&ops, &ids)
            .unwrap();
        let account = |name: &str, signer: &KeyPair| {
            let kp = generate(KeyKind::Account);
            let mut c = AccountClaims::new(kp.public_key());
            c.data.name = name.into();
            c.data.iat = 1_700_000_000;
            (kp.public_key(), claims::encode(&mut c, signer).unwrap())
        };
        let (orphan, orphan_jwt) = account("orphan", &ops);
        let (theirs, theirs_jwt) = account("theirs", &generate(KeyKind::Operator));
        let mut sys = server.connect_ok(&project.creds("SYS/sys"));
        for jwt in [&orphan_jwt, &theirs_jwt] {
            push_jwt(&mut sys, jwt, &v);
        }
        let held = |k: &str| server.dir().join(format!("jwt/{k}.jwt")).exists();
        assert!(held(&orphan) && held(&theirs), "{v}");

        let plan = project.run(&["plan", "--live"]).success();
        assert!(
            plan.stdout.contains(&format!("? account {orphan} named \"orphan\" on n1 is not managed by this manifest; listed only (--prune deletes it)")),
            "{v}: {}",
            plan.stdout
        );
        assert!(
            plan.stdout.contains(&format!("? account {theirs} named \"theirs\" on n1 is held for another operator: signed by ")),
            "{v}: {}",
            plan.stdout
        );
        let run = apply(&project, &["--prune"]).success();
        assert_acked(&run, 1, &v);
        assert!(!held(&orphan), "{v}: --prune deletes what O2 issued");
        assert!(held(&theirs), "{v}: another operator's account stays");
        // And it stays listed, never deleted: nothing left to do.
        let again = apply(&project, &["--prune"]).success();
        assert!(!again.stderr.contains("Pushing"), "{v}: {}", again.stderr);
        assert!(held(&theirs), "{v}");
    }
}
