//! Tests against the nsc-store fixture, which was written by the official Go
//! jwt v2.3.0 and nkeys libraries (see `tests/fixtures/nsc-store/README.md`).

use crate::claims::*;
use std::fs;
use std::path::{Path, PathBuf};

const STORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nsc-store");

fn files_with_ext(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_with_ext(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn fixture_jwts() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    files_with_ext(&Path::new(STORE).join("stores/O2"), "jwt", &mut paths);
    paths.sort();
    assert_eq!(paths.len(), 10, "operator, 3 accounts, 6 users");
    paths
        .into_iter()
        .map(|p| {
            let token = fs::read_to_string(&p).unwrap();
            (p, token)
        })
        .collect()
}

fn jwt(rel: &str) -> String {
    fs::read_to_string(Path::new(STORE).join("stores/O2").join(rel)).unwrap()
}

fn account(rel: &str) -> AccountClaims {
    decode_as::<Account>(&jwt(rel)).unwrap()
}

/// Go `v2.3.0` wrote `signing_keys` in random map order; we write them
/// sorted. Sort the original the same way so the comparison is about
/// everything else.
fn with_sorted_signing_keys(payload: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(payload).unwrap();
    if let Some(keys) = v
        .pointer_mut("/nats/signing_keys")
        .and_then(|k| k.as_array_mut())
    {
        let key_of = |e: &serde_json::Value| {
            e.as_str()
                .or_else(|| e.get("key").and_then(|k| k.as_str()))
                .unwrap_or_default()
                .to_string()
        };
        keys.sort_by_key(key_of);
    }
    gojson::to_string(&v)
}

fn reencode(claims: &AnyClaims) -> String {
    match claims {
        AnyClaims::Operator(c) => gojson::to_string(c),
        AnyClaims::Account(c) => gojson::to_string(c),
        AnyClaims::User(c) => gojson::to_string(c),
        AnyClaims::Activation(c) => gojson::to_string(c),
        AnyClaims::Generic(v) => gojson::to_string(v),
    }
}

#[test]
fn every_fixture_jwt_decodes_and_verifies() {
    for (path, token) in fixture_jwts() {
        let d = decode(&token).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(d.verified);
        assert!(
            !matches!(d.claims, AnyClaims::Generic(_)),
            "{}",
            path.display()
        );
    }
}

#[test]
fn reencoding_every_fixture_reproduces_its_payload_bytes() {
    let mut tokens: Vec<(String, String)> = fixture_jwts()
        .into_iter()
        .map(|(p, t)| (p.display().to_string(), t))
        .collect();
    tokens.push((
        "sales import token".into(),
        account("accounts/sales/sales.jwt").nats.imports[1]
            .token
            .clone(),
    ));
    for (name, token) in tokens {
        let d = decode(&token).unwrap();
        let ours = reencode(&d.claims);
        // Only account A has more than one signing key.
        if name.ends_with("/A/A.jwt") {
            assert_ne!(
                ours, d.payload,
                "A's keys were written unsorted by jwt 2.3.0"
            );
            assert_eq!(ours, with_sorted_signing_keys(&d.payload), "{name}");
        } else {
            assert_eq!(ours, d.payload, "{name}");
        }
    }
}

#[test]
fn every_fixture_jti_is_the_hash_of_its_standard_claims() {
    for (path, token) in fixture_jwts() {
        let data = decode(&token).unwrap().claims.data();
        assert_eq!(compute_jti(&data), data.jti, "{}", path.display());
    }
}

#[test]
fn every_fixture_claim_passes_validation() {
    for (path, token) in fixture_jwts() {
        let issues = match decode(&token).unwrap().claims {
            AnyClaims::Operator(c) => c.validate(),
            AnyClaims::Account(c) => c.validate(),
            AnyClaims::User(c) => c.validate(),
            AnyClaims::Activation(c) => c.validate(),
            AnyClaims::Generic(_) => unreachable!(),
        };
        assert!(issues.is_empty(), "{}: {issues:?}", path.display());
    }
}

#[test]
fn operator_o2_has_one_signing_key_and_the_sys_account() {
    let op = decode_as::<Operator>(&jwt("O2.jwt")).unwrap();
    assert_eq!(op.data.name, "O2");
    assert_eq!(op.data.iss, op.data.sub, "operators are self-signed");
    assert_eq!(op.nats.signing_keys.len(), 1);
    assert_eq!(op.nats.operator_service_urls, ["nats://127.0.0.1:4222"]);
    let sys = account("accounts/SYS/SYS.jwt");
    assert_eq!(op.nats.system_account, sys.data.sub);
    for a in ["A/A.jwt", "SYS/SYS.jwt", "sales/sales.jwt"] {
        assert_eq!(
            account(&format!("accounts/{a}")).data.iss,
            op.nats.signing_keys[0]
        );
    }
}

#[test]
fn account_a_has_its_scoped_role_limits_exports_and_revocation() {
    let a = account("accounts/A/A.jwt");
    let scopes: Vec<&UserScope> = a.nats.signing_keys.0.values().flatten().collect();
    assert_eq!(a.nats.signing_keys.0.len(), 2);
    assert_eq!(scopes.len(), 1);
    let service = scopes[0];
    assert_eq!(service.role, "service");
    let perms = &service.template.permissions;
    assert_eq!(perms.subscribe.allow, ["q.>"]);
    assert_eq!(perms.publish.deny, [">"]);
    assert_eq!(
        perms.resp,
        Some(ResponsePermission {
            max: 1,
            ttl: 60_000_000_000
        })
    );
    assert_eq!(service.template.nats_limits, NatsLimits::unlimited());

    assert_eq!(a.nats.limits.account.conn, 100);
    assert_eq!(a.nats.limits.nats.payload, 1_048_576);
    assert!(!a.nats.limits.is_jetstream_enabled());

    let gone = decode_as::<User>(&jwt("accounts/A/users/gone.jwt")).unwrap();
    assert!(a.nats.revocations.contains_key(&gone.data.sub));
    assert!(a.is_revoked(&gone.data.sub, gone.data.iat));
    let u = decode_as::<User>(&jwt("accounts/A/users/U.jwt")).unwrap();
    assert!(!a.is_revoked(&u.data.sub, u.data.iat));

    let kinds: Vec<(&str, Option<ExportType>, bool)> = a
        .nats
        .exports
        .iter()
        .map(|e| (e.subject.as_str(), e.export_type, e.token_req))
        .collect();
    assert_eq!(
        kinds,
        [
            ("events.>", Some(ExportType::Stream), false),
            ("help.>", Some(ExportType::Service), true)
        ]
    );
}

#[test]
fn users_of_a_carry_the_expected_permissions_and_issuers() {
    let a = account("accounts/A/A.jwt");
    let u = decode_as::<User>(&jwt("accounts/A/users/U.jwt")).unwrap();
    assert_eq!(
        u.nats.permission_limits.permissions.publish.allow,
        ["a.>", "_INBOX.>"]
    );
    assert_eq!(u.nats.issuer_account, a.data.sub);
    assert_eq!(
        a.nats.signing_keys.0.get(&u.data.iss),
        Some(&None),
        "plain signing key"
    );

    let worker = decode_as::<User>(&jwt("accounts/A/users/worker.jwt")).unwrap();
    assert!(
        worker.nats.permission_limits.is_empty(),
        "scoped users carry no limits"
    );
    assert_eq!(
        a.nats.signing_keys.0[&worker.data.iss]
            .as_ref()
            .map(|s| s.role.as_str()),
        Some("service")
    );
}

#[test]
fn sales_imports_events_and_help_with_a_service_activation() {
    let a = account("accounts/A/A.jwt");
    let sales = account("accounts/sales/sales.jwt");
    assert!(sales.nats.limits.is_jetstream_enabled());
    let scope = sales.nats.signing_keys.0.values().flatten().next().unwrap();
    assert_eq!(scope.role, "team-service");
    assert_eq!(
        scope.template.permissions.subscribe.allow,
        ["{{account-name()}}.{{tag(team)}}.{{name()}}.>"]
    );

    let imports = &sales.nats.imports;
    assert_eq!(imports.len(), 2);
    assert_eq!(
        (imports[0].subject.as_str(), imports[0].import_type),
        ("events.>", Some(ExportType::Stream))
    );
    assert!(imports[0].token.is_empty());
    let help = &imports[1];
    assert_eq!(
        (help.subject.as_str(), help.import_type),
        ("help.>", Some(ExportType::Service))
    );
    assert_eq!(help.account, a.data.sub);

    let act = decode_as::<Activation>(&help.token).unwrap();
    assert_eq!(act.nats.kind, Some(ExportType::Service));
    assert_eq!(act.nats.subject, "help.>");
    assert_eq!(
        act.data.sub, sales.data.sub,
        "activation subject is the importer"
    );
    assert_eq!(act.data.iss, a.data.sub, "signed by the exporter");
    assert_eq!(compute_jti(&act.data), act.data.jti);

    let pam = decode_as::<User>(&jwt("accounts/sales/users/pam.jwt")).unwrap();
    assert_eq!(pam.nats.generic.tags, ["team:support"]);
}

#[test]
fn every_fixture_creds_file_parses_and_formats_back_identically() {
    let mut paths = Vec::new();
    files_with_ext(&Path::new(STORE).join("creds/O2"), "creds", &mut paths);
    assert_eq!(paths.len(), 6);
    for path in paths {
        let text = fs::read_to_string(&path).unwrap();
        let creds = parse_creds(&text).unwrap();
        assert_eq!(
            format_user_creds(&creds.jwt, creds.seed.expose()),
            text,
            "{}",
            path.display()
        );
        let user = decode_as::<User>(&creds.jwt).unwrap();
        assert_eq!(creds.seed.key_pair().unwrap().public_key(), user.data.sub);
    }
}

#[test]
fn fixture_jwts_fail_to_decode_as_the_wrong_type() {
    let err = decode_as::<User>(&jwt("O2.jwt")).unwrap_err();
    assert_eq!(
        err,
        ClaimsError::WrongType {
            expected: "user",
            found: "operator".into()
        }
    );
}

#[test]
fn decoded_account_a_snapshot() {
    let a = account("accounts/A/A.jwt");
    let pretty = serde_json::to_string_pretty(&a).unwrap();
    // No crate/module prefix in the file name, so the snapshot survives the
    // move from the scratch crate into natsform.
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("decoded_account_a", pretty);
    });
}
