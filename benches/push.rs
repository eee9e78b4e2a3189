//! Benchmark: pushing N changed accounts (default 1,000) to a three-node
//! full-resolver cluster, against a bare pipelined loop that sends the same
//! N JWTs on one connection and waits for 3·N replies, in the same run.
//!
//!     cargo bench --bench push
//!     NATSFORM_BENCH_PUSH_ACCOUNTS=200 cargo bench --bench push   # smaller
//!     NATSFORM_BENCH_PUSH_ROUNDS=9 cargo bench --bench push       # more rounds
//!
//! Each round changes every account (a new description), writes the store
//! without pushing, and times one side pushing those JWTs; the sides
//! alternate who goes first. natsform's side is `deploy::Session::push`,
//! the step apply runs after writing the store (connected, servers counted
//! and listed before the clock starts, as the bare loop is connected before
//! its clock starts). A whole `apply --push` of one more round is timed
//! last, for context.
//!
//! The cluster is the test harness's (tests/support/cluster.rs) on the
//! first `nats-server` found (NATS_SERVER_BIN picks one). Figures are
//! wall-clock on a shared machine: compare the ratio, not the seconds.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;

use natsform::deploy;

use support::cli::Project;
use support::cluster::{Cluster, ClusterOptions};
use support::nats;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A manifest with `accounts` accounts of one user each; `round` goes
/// into every account's description, so each round changes them all.
fn manifest(accounts: usize, round: usize) -> String {
    let mut t = String::from("[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n[operators.bench]\nsystem_account = \"SYS\"\n\n[operators.bench.accounts.SYS.users.sys]\n");
    for a in 0..accounts {
        let _ = writeln!(
            t,
            "[operators.bench.accounts.acc{a:04}]\ndescription = \"round {round}\"\n[operators.bench.accounts.acc{a:04}.users.u]\n"
        );
    }
    t
}

/// The bare loop: one plain connection as `creds`, one inbox
/// subscription, every JWT published to `$SYS.REQ.CLAIMS.UPDATE` back to
/// back, then read until `expect` replies (each checked to be a success).
fn bare_pipelined_push(port: u16, creds: &str, jwts: &[String], expect: usize) -> Duration {
    let (user_jwt, seed) = nats::parse_creds(creds).expect("creds");
    let key = KeyPair::from_seed(&seed).expect("seed");
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut info = String::new();
    reader.read_line(&mut info).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    let nonce = info["nonce"].as_str().unwrap_or_default();
    let sig = BASE64URL_NOPAD.encode(&key.sign(nonce.as_bytes()).unwrap());
    let connect = serde_json::json!({
        "verbose": false, "pedantic": false, "jwt": user_jwt, "sig": sig,
        "protocol": 1, "headers": false, "echo": false, "name": "bare-loop",
    });
    let mut writer = stream;
    write!(
        writer,
        "CONNECT {connect}\r\nSUB _INBOX.bare.* 1\r\nPING\r\n"
    )
    .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "bare loop: {line}");
        if line.starts_with("PONG") {
            break;
        }
    }
    let start = Instant::now();
    let requests: Vec<u8> = {
        let mut out = Vec::new();
        for (i, jwt) in jwts.iter().enumerate() {
            write!(
                out,
                "PUB $SYS.REQ.CLAIMS.UPDATE _INBOX.bare.{i} {}\r\n{jwt}\r\n",
                jwt.len()
            )
            .unwrap();
        }
        out
    };
    // Write on another thread so that replies are read meanwhile.
    let sender = thread::spawn(move || {
        writer.write_all(&requests).unwrap();
        writer.flush().unwrap();
        writer
    });
    let mut replies = 0;
    while replies < expect {
        line.clear();
        reader.read_line(&mut line).unwrap();
        // The server may send INFO (cluster changes) or PING at any time.
        if line.starts_with("PING") || line.starts_with("INFO") {
            continue;
        }
        assert!(line.starts_with("MSG "), "bare loop: {line}");
        let size: usize = line.split_whitespace().last().unwrap().parse().unwrap();
        let mut payload = vec![0; size + 2];
        reader.read_exact(&mut payload).unwrap();
        let reply = String::from_utf8_lossy(&payload);
        assert!(reply.contains("\"code\":200"), "bare loop: {reply}");
        replies += 1;
    }
    let elapsed = start.elapsed();
    drop(sender.join().unwrap());
    elapsed
}

/// The store's account JWTs, in account order.
fn store_jwts(project: &Project, accounts: usize) -> Vec<String> {
    (0..accounts)
        .map(|a| project.store_file(&format!("bench/accounts/acc{a:04}/acc{a:04}.jwt")))
        .collect()
}

/// Writes round `round` of the manifest and applies it to the store only:
/// every account JWT changes.
fn next_round(project: &Project, accounts: usize, round: usize) -> Vec<String> {
    std::fs::write(&project.manifest, manifest(accounts, round)).unwrap();
    project
        .run(&["apply", "--auto-approve", "--no-push"])
        .success();
    store_jwts(project, accounts)
}

/// natsform's push step (`deploy::Session::push`, what apply runs after
/// the store is written): connected, servers counted and listed before the
/// clock starts, as the bare loop is connected before its clock starts.
fn natsform_push(url: &str, creds: &str, jwts: &[String]) -> Duration {
    let (user_jwt, seed) = nats::parse_creds(creds).expect("creds");
    let credentials = deploy::Credentials {
        jwt: user_jwt,
        key: KeyPair::from_seed(&seed).expect("seed"),
        inbox: "_INBOX".to_string(),
    };
    let target = deploy::Target {
        operator: "bench".to_string(),
        urls: vec![url.to_string()],
        connect_timeout: deploy::DEFAULT_CONNECT_TIMEOUT,
        request_timeout: deploy::DEFAULT_REQUEST_TIMEOUT,
        tls_ca: None,
        tls_cert: None,
        tls_key: None,
        acks: None,
    };
    let mut session = deploy::Session::open(&target, credentials).expect("connecting");
    assert_eq!(session.servers.len(), 3, "three servers answer PING");
    let requests: Vec<deploy::Request> = jwts
        .iter()
        .map(|jwt| deploy::Request {
            public: nats::jwt_subject(jwt),
            address: None,
            delete: false,
            payload: jwt.as_bytes().to_vec(),
            error: None,
        })
        .collect();
    let start = Instant::now();
    let outcome = session.push(requests, &deploy::report::Progress::hidden());
    let elapsed = start.elapsed();
    assert!(
        outcome.ok(),
        "natsform push failed: {:?}",
        outcome.failures()
    );
    assert!(outcome.accounts.iter().all(|a| a.acknowledged.len() == 3));
    elapsed
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run
    // only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let accounts = env_usize("NATSFORM_BENCH_PUSH_ACCOUNTS", 1000);
    let binary = nats::nats_server_binary();
    let project = Project::with_manifest("natsform.toml", &manifest(accounts, 0));
    project.run(&["apply", "--auto-approve"]).success();
    let cluster = Cluster::start(&project, &binary, &ClusterOptions::default());
    println!(
        "push benchmark: {accounts} changed accounts, 3-node cluster of nats-server {}",
        cluster.version()
    );
    let sys = project.creds("SYS/sys");
    let port = cluster.node("n1").client_port;
    let url = cluster.node("n1").url();
    // Warm up: the servers hold every account once.
    bare_pipelined_push(port, &sys, &store_jwts(&project, accounts), 3 * accounts);

    let rounds = env_usize("NATSFORM_BENCH_PUSH_ROUNDS", 5);
    let (mut ours, mut bare, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate who goes first; each pushes JWTs the servers lack.
        let jwts = next_round(&project, accounts, 2 * round);
        let first = if round % 2 == 0 {
            natsform_push(&url, &sys, &jwts)
        } else {
            bare_pipelined_push(port, &sys, &jwts, 3 * accounts)
        };
        let jwts = next_round(&project, accounts, 2 * round + 1);
        let second = if round % 2 == 0 {
            bare_pipelined_push(port, &sys, &jwts, 3 * accounts)
        } else {
            natsform_push(&url, &sys, &jwts)
        };
        let (n, b) = if round % 2 == 0 {
            (first, second)
        } else {
            (second, first)
        };
        let ratio = n.as_secs_f64() / b.as_secs_f64();
        println!("  round {round}: natsform push {n:?}, bare loop {b:?}, ratio {ratio:.2}x");
        ours.push(n);
        bare.push(b);
        ratios.push(ratio);
    }
    let best = |t: &[Duration]| t.iter().min().copied().unwrap_or_default();
    let (n, b) = (best(&ours), best(&bare));
    ratios.sort_by(f64::total_cmp);
    println!(
        "bare pipelined loop, one connection, {accounts} JWTs, {} replies (best of {rounds}): {b:?}",
        3 * accounts
    );
    println!("natsform push (deploy::Session::push, best of {rounds}): {n:?}");
    println!(
        "ratio natsform / bare: {:.2}x of the bests, {:.2}x median of the rounds (target <= 1.5x)",
        n.as_secs_f64() / b.as_secs_f64(),
        ratios[ratios.len() / 2]
    );

    // For context: a whole `apply` of the next round through the binary
    // (sign, write the store, read what the servers hold, push).
    std::fs::write(&project.manifest, manifest(accounts, 100)).unwrap();
    let start = Instant::now();
    let run = project.run(&["apply", "--auto-approve", "--quiet", "--push", &url]);
    let whole = start.elapsed();
    assert_eq!(run.code, 0, "apply: {}", run.stderr);
    println!("whole `natsform apply --push` of {accounts} changed accounts (one run): {whole:?}");
}
