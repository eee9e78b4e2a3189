//! Cross-checks natsform's encoder against the official Go jwt library
//! (Debian's v2.3.0, the one inside nats-server 2.9.10) via the small Go
//! program in `tests/oracle/jwtcheck`.
//!
//! This test fails, rather than skips, when Go or the Go jwt sources are
//! missing: install them with
//! `apt-get install golang-go golang-github-nats-io-jwt-dev`.

use natsform::claims::*;
use nkeys::{KeyPair, KeyPairType};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GOPATH: &str = "/usr/share/gocode";
const INSTALL: &str = "apt-get install golang-go golang-github-nats-io-jwt-dev";
const IAT: i64 = 1_795_368_145;

fn key(kind: KeyPairType, n: u8) -> KeyPair {
    KeyPair::new_from_raw(kind, [n; 32]).unwrap()
}

/// Builds the oracle once per test run into Cargo's scratch directory.
fn build_oracle() -> PathBuf {
    let go_version = Command::new("go").arg("version").output();
    assert!(
        go_version.as_ref().is_ok_and(|o| o.status.success()),
        "the Go toolchain is required for this test; install it with `{INSTALL}`"
    );
    assert!(
        Path::new(GOPATH)
            .join("src/github.com/nats-io/jwt/v2/claims.go")
            .exists(),
        "the Go jwt v2 sources are required in {GOPATH}; install them with `{INSTALL}`"
    );
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jwtcheck");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join("jwtcheck");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/jwtcheck");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .current_dir(&src)
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOCACHE", out_dir.join("gocache"))
        .env("GOFLAGS", "")
        .status()
        .expect("running go build");
    assert!(status.success(), "go build of the oracle failed");
    bin
}

fn run_oracle(bin: &Path, lines: &[String]) -> Vec<serde_json::Value> {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the oracle");
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "oracle exited with {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    let results: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), lines.len());
    results
}

/// jwt 2.3.0 writes `signing_keys` in Go map order; compare sorted.
fn normalise(payload: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(payload).unwrap();
    if let Some(keys) = v
        .pointer_mut("/nats/signing_keys")
        .and_then(|k| k.as_array_mut())
    {
        keys.sort_by_key(|e| {
            e.as_str()
                .or_else(|| e.get("key").and_then(|k| k.as_str()))
                .unwrap_or_default()
                .to_string()
        });
    }
    gojson::to_string(&v)
}

struct World {
    op: KeyPair,
    op_sk: KeyPair,
    a: KeyPair,
    a_sk: KeyPair,
    a_scoped: KeyPair,
    b: KeyPair,
    sys: KeyPair,
}

fn world() -> World {
    World {
        op: key(KeyPairType::Operator, 1),
        op_sk: key(KeyPairType::Operator, 2),
        a: key(KeyPairType::Account, 3),
        a_sk: key(KeyPairType::Account, 4),
        a_scoped: key(KeyPairType::Account, 5),
        b: key(KeyPairType::Account, 6),
        sys: key(KeyPairType::Account, 7),
    }
}

fn operator(w: &World) -> String {
    let mut c = OperatorClaims::new(w.op.public_key());
    c.data.iat = IAT;
    c.data.name = "op <&> \u{2028}".into();
    c.nats.signing_keys = vec![
        w.op_sk.public_key(),
        key(KeyPairType::Operator, 9).public_key(),
    ];
    c.nats.account_server_url = "nats://127.0.0.1:4222".into();
    c.nats.operator_service_urls = vec!["nats://a:4222".into(), "tls://b:4443".into()];
    c.nats.system_account = w.sys.public_key();
    c.nats.assert_server_version = "2.9.0".into();
    c.nats.strict_signing_key_usage = true;
    c.nats.generic.tags = vec!["env:prod".into()];
    assert_eq!(c.validate(), vec![]);
    encode(&mut c, &w.op).unwrap()
}

fn rich_template() -> UserPermissionLimits {
    let mut t = UserPermissionLimits::unlimited();
    t.permissions.publish.allow = vec!["a.>".into(), "_INBOX.>".into()];
    t.permissions.publish.deny = vec!["a.secret".into()];
    t.permissions.subscribe.allow = vec!["q.> workers".into(), "{{name()}}.>".into()];
    t.permissions.resp = Some(ResponsePermission {
        max: 1,
        ttl: 60_000_000_000,
    });
    t.limits.src = vec!["10.0.0.0/8".into(), "::1/128".into()];
    t.limits.times = vec![TimeRange {
        start: "22:00:00".into(),
        end: "06:00:00".into(),
    }];
    t.limits.times_location = "Europe/Berlin".into();
    t.nats_limits = NatsLimits {
        subs: 10,
        data: -1,
        payload: 4096,
    };
    t.bearer_token = true;
    t.allowed_connection_types = vec!["STANDARD".into(), "WEBSOCKET".into()];
    t
}

fn exporter(w: &World) -> String {
    let mut c = AccountClaims::new(w.a.public_key());
    c.data.iat = IAT;
    c.data.name = "A".into();
    c.data.exp = IAT + 86_400 * 365 * 10;
    let l = &mut c.nats.limits;
    l.account.conn = 100;
    l.nats.payload = 1 << 20;
    l.tiered.insert(
        "R1".into(),
        JetStreamLimits {
            memory_storage: 1 << 30,
            disk_storage: -1,
            streams: 10,
            consumer: -1,
            ..Default::default()
        },
    );
    c.nats.signing_keys.0.insert(w.a_sk.public_key(), None);
    let mut scope = UserScope::new("service");
    scope.template = rich_template();
    c.nats
        .signing_keys
        .0
        .insert(w.a_scoped.public_key(), Some(scope));
    c.nats.exports = vec![
        Export {
            name: "help".into(),
            subject: "help.>".into(),
            export_type: Some(ExportType::Service),
            token_req: true,
            ..Default::default()
        },
        Export {
            name: "events".into(),
            subject: "events.>".into(),
            export_type: Some(ExportType::Stream),
            ..Default::default()
        },
        Export {
            name: "per account".into(),
            subject: "svc.*.req".into(),
            export_type: Some(ExportType::Service),
            account_token_position: 2,
            response_type: "Stream".into(),
            response_threshold: 5_000_000_000,
            latency: Some(ServiceLatency {
                sampling: SamplingRate(0),
                results: "lat.svc".into(),
            }),
            revocations: [(w.b.public_key(), IAT - 10)].into(),
            advertise: true,
            description: "per-account <service>".into(),
            info_url: "https://example.com/svc?a=1&b=2".into(),
            ..Default::default()
        },
    ];
    c.nats
        .revocations
        .insert(key(KeyPairType::User, 20).public_key(), IAT);
    c.nats.revocations.insert("*".into(), IAT - 100);
    c.nats.default_permissions.publish.deny = vec![">".into()];
    c.nats.default_permissions.resp = Some(ResponsePermission { max: 2, ttl: 0 });
    c.nats.mappings.insert(
        "m.in".into(),
        vec![
            WeightedMapping {
                subject: "m.a".into(),
                weight: 60,
                cluster: String::new(),
            },
            WeightedMapping {
                subject: "m.b".into(),
                weight: 40,
                cluster: String::new(),
            },
        ],
    );
    c.nats.mappings.insert(
        "x.in".into(),
        vec![WeightedMapping {
            subject: "x.out".into(),
            weight: 0,
            cluster: "c1".into(),
        }],
    );
    c.nats.description = "the exporter".into();
    c.nats.info_url = "https://example.com".into();
    c.nats.generic.tags = vec!["env:prod".into()];
    assert_eq!(c.validate(), vec![]);
    assert_eq!(compat_issues_jwt_2_3(&c), vec![]);
    encode(&mut c, &w.op_sk).unwrap()
}

fn activation(w: &World) -> String {
    let mut c = ActivationClaims::new(w.b.public_key());
    c.data.iat = IAT;
    c.data.name = "help.>".into();
    c.nats.subject = "help.>".into();
    c.nats.kind = Some(ExportType::Service);
    c.nats.issuer_account = w.a.public_key();
    assert_eq!(c.validate(), vec![]);
    encode(&mut c, &w.a_sk).unwrap()
}

fn importer(w: &World, token: String) -> String {
    let mut c = AccountClaims::new(w.b.public_key());
    c.data.iat = IAT;
    c.data.name = "B".into();
    c.nats.imports = vec![
        Import {
            name: "help".into(),
            subject: "help.>".into(),
            account: w.a.public_key(),
            token,
            local_subject: "ahelp.>".into(),
            import_type: Some(ExportType::Service),
            share: true,
            ..Default::default()
        },
        Import {
            name: "events".into(),
            subject: "events.>".into(),
            account: w.a.public_key(),
            local_subject: "a.events.>".into(),
            import_type: Some(ExportType::Stream),
            ..Default::default()
        },
        Import {
            subject: format!("svc.{}.req", w.b.public_key()),
            account: w.a.public_key(),
            import_type: Some(ExportType::Service),
            ..Default::default()
        },
        Import {
            subject: "ticks.*.*".into(),
            account: w.sys.public_key(),
            local_subject: "t.$2.$1".into(),
            import_type: Some(ExportType::Stream),
            ..Default::default()
        },
    ];
    assert_eq!(c.validate(), vec![]);
    encode(&mut c, &w.op_sk).unwrap()
}

/// Fields jwt 2.3.0 does not know; it must still accept the account.
fn newer_fields_account(w: &World) -> String {
    let mut c = AccountClaims::new(key(KeyPairType::Account, 8).public_key());
    c.data.iat = IAT;
    c.nats.authorization = Some(ExternalAuthorization {
        auth_users: vec![key(KeyPairType::User, 30).public_key()],
        allowed_accounts: vec!["*".into()],
        xkey: key(KeyPairType::Curve, 31).public_key(),
    });
    c.nats.trace = Some(MsgTrace {
        destination: "trace.here".into(),
        sampling: 50,
    });
    c.nats.cluster_traffic = "owner".into();
    let mut scope = UserScope::new("r");
    scope.description = Some("described".into());
    scope.template.proxy_required = true;
    c.nats
        .signing_keys
        .0
        .insert(key(KeyPairType::Account, 32).public_key(), Some(scope));
    c.nats.exports = vec![Export {
        subject: "tr".into(),
        export_type: Some(ExportType::Service),
        allow_trace: true,
        ..Default::default()
    }];
    assert_eq!(c.validate(), vec![]);
    encode(&mut c, &w.op_sk).unwrap()
}

fn users(w: &World) -> Vec<(String, KeyPair)> {
    let u1 = key(KeyPairType::User, 40);
    let mut c = UserClaims::new(u1.public_key());
    c.data.iat = IAT;
    c.data.name = "u1 \u{8}\u{c} <weird> & \u{2029}".into();
    c.data.exp = IAT + 3600;
    c.data.nbf = IAT - 60;
    c.data.aud = "aud".into();
    c.nats.permission_limits = rich_template();
    c.nats.issuer_account = w.a.public_key();
    c.nats.generic.tags = vec!["team:support".into()];
    assert_eq!(c.validate(), vec![]);
    let t1 = encode(&mut c, &w.a_sk).unwrap();

    let u2 = key(KeyPairType::User, 41);
    let mut c = UserClaims::new_scoped(u2.public_key(), w.a.public_key());
    c.data.iat = IAT;
    c.data.name = "worker".into();
    let t2 = encode(&mut c, &w.a_scoped).unwrap();

    let u3 = key(KeyPairType::User, 42);
    let mut c = UserClaims::new(u3.public_key());
    c.data.iat = IAT;
    let t3 = encode(&mut c, &w.a).unwrap();
    vec![(t1, u1), (t2, u2), (t3, u3)]
}

/// Claims both sides must consider invalid.
fn invalid(w: &World) -> Vec<String> {
    let user = |f: &dyn Fn(&mut UserClaims)| {
        let mut c = UserClaims::new(key(KeyPairType::User, 50).public_key());
        c.data.iat = IAT;
        f(&mut c);
        assert!(!c.validate().is_empty(), "we must refuse {:?}", c.nats);
        encode(&mut c, &w.a).unwrap()
    };
    let mut out = vec![
        user(&|c| c.nats.permission_limits.limits.src = vec!["1.2.3.4".into()]),
        user(&|c| {
            c.nats.permission_limits.limits.times = vec![TimeRange {
                start: "17:00".into(),
                end: "18:00:00".into(),
            }]
        }),
        user(&|c| c.nats.permission_limits.permissions.publish.allow = vec!["a q".into()]),
        user(&|c| c.nats.permission_limits.permissions.subscribe.deny = vec!["a b c".into()]),
        user(&|c| c.nats.issuer_account = w.op.public_key()),
        user(&|c| c.nats.permission_limits.limits.times_location = "Mars/Olympus".into()),
    ];
    let mut a = AccountClaims::new(key(KeyPairType::Account, 51).public_key());
    a.data.iat = IAT;
    a.nats.limits = OperatorLimits::default();
    a.nats.exports = vec![Export {
        subject: "w.>".into(),
        export_type: Some(ExportType::Stream),
        ..Default::default()
    }];
    assert!(!a.validate().is_empty());
    out.push(encode(&mut a, &w.op).unwrap());
    let mut a = AccountClaims::new(key(KeyPairType::Account, 52).public_key());
    a.data.iat = IAT;
    a.nats.exports = vec![
        Export {
            subject: "s.>".into(),
            export_type: Some(ExportType::Service),
            ..Default::default()
        },
        Export {
            subject: "s.x".into(),
            export_type: Some(ExportType::Service),
            ..Default::default()
        },
    ];
    assert!(!a.validate().is_empty());
    out.push(encode(&mut a, &w.op).unwrap());
    out
}

#[test]
fn go_jwt_accepts_and_reproduces_what_natsform_encodes() {
    let bin = build_oracle();
    let w = world();
    let act = activation(&w);
    let mut cases: Vec<(String, &str, bool)> = vec![
        (operator(&w), "operator", true),
        (exporter(&w), "account", true),
        (act.clone(), "activation", true),
        (importer(&w, act), "account", true),
        (newer_fields_account(&w), "account", false),
    ];
    let users = users(&w);
    for (t, _) in &users {
        cases.push((t.clone(), "user", true));
    }
    let lines: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let results = run_oracle(&bin, &lines);
    for ((token, kind, comparable), r) in cases.iter().zip(&results) {
        let ours = decode(token).unwrap();
        let data = ours.claims.data();
        assert_eq!(r["decode_error"], serde_json::Value::Null, "{kind}: {r}");
        assert_eq!(r["type"], *kind, "{r}");
        assert_eq!(
            r["ok"], true,
            "Go reports blocking errors for {kind}: {}",
            r["errors"]
        );
        assert_eq!(r["subject"], data.sub.as_str());
        assert_eq!(r["issuer"], data.iss.as_str());
        assert_eq!(
            r["jti_recomputed"],
            data.jti.as_str(),
            "jti differs for {kind}"
        );
        assert_eq!(r["payload"], ours.payload.as_str());
        if *comparable {
            assert_eq!(
                normalise(r["remarshal"].as_str().unwrap()),
                normalise(&ours.payload),
                "Go re-marshals {kind} differently"
            );
        }
    }

    // Creds: Go's FormatUserConfig must produce our bytes exactly.
    let creds_lines: Vec<String> = users
        .iter()
        .map(|(t, kp)| format!("creds {t} {}", kp.seed().unwrap()))
        .collect();
    for ((t, kp), r) in users.iter().zip(run_oracle(&bin, &creds_lines)) {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(
            r["creds"],
            format_user_creds(t, &kp.seed().unwrap()).as_str()
        );
    }
}

#[test]
fn go_jwt_blocks_what_natsform_validation_blocks() {
    let bin = build_oracle();
    let w = world();
    let tokens = invalid(&w);
    for (i, r) in run_oracle(&bin, &tokens).iter().enumerate() {
        assert_eq!(r["decode_error"], serde_json::Value::Null, "{r}");
        assert_eq!(
            r["ok"], false,
            "case {i}: Go accepted a claim natsform refuses: {r}"
        );
    }
}
