//! `examples/full/` uses every manifest field. Applying it must succeed, and
//! every JWT it produces, decoded, must match the golden snapshot field by
//! field. Keys are random, so each public key is shown as the lock address
//! that names it; `iat` and `jti` change on every signing and are redacted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::Value;
use support::cli::Project;
use support::nats::jwt_claims;

/// Public key → lock address, read from `natsform.lock`.
fn key_names(project: &Project) -> BTreeMap<String, String> {
    let lock = fs::read_to_string(project.path().join("natsform.lock")).unwrap();
    let table: toml::Table = toml::from_str(&lock).unwrap();
    let mut names = BTreeMap::new();
    collect_keys(&toml::Value::Table(table), &mut names);
    names
}

fn collect_keys(v: &toml::Value, names: &mut BTreeMap<String, String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            match v {
                toml::Value::String(public) => {
                    names.insert(public.clone(), format!("<{k}>"));
                }
                other => collect_keys(other, names),
            }
        }
    }
}

fn redact(v: &mut Value, names: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(n) = names.get(s.as_str()) {
                *s = n.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, names)),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "iat" || k == "jti" {
                    *x = Value::String(format!("<{k}>"));
                } else if let (Value::String(t), "token") = (&*x, k.as_str()) {
                    // An activation natsform issued: pin its decoded claims.
                    let mut act = jwt_claims(t);
                    redact(&mut act, names);
                    *x = act;
                } else {
                    redact(x, names);
                }
                // The wire sorts signing keys by public key, which is random:
                // order them by the (stable) name instead.
                if let (Value::Array(a), "signing_keys") = (x, k.as_str()) {
                    a.sort_by_key(|e| e.get("key").unwrap_or(e).to_string());
                }
            }
        }
        _ => {}
    }
}

fn jwts(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            jwts(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "jwt") {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, fs::read_to_string(&p).unwrap());
        }
    }
}

#[test]
fn the_full_example_applies_and_every_jwt_matches_the_golden_claims() {
    let project = Project::from_example("full", "natsform.toml");
    project.apply();
    let names = key_names(&project);
    let mut tokens = BTreeMap::new();
    let store = project.path().join("store");
    jwts(&store, &store, &mut tokens);
    assert_eq!(tokens.len(), 2 + 6 + 8, "{:?}", tokens.keys());

    let mut decoded = serde_json::Map::new();
    for (path, token) in &tokens {
        let mut claims = jwt_claims(token);
        redact(&mut claims, &names);
        decoded.insert(path.clone(), claims);
    }
    insta::assert_snapshot!(
        "full_example_claims",
        serde_json::to_string_pretty(&Value::Object(decoded)).unwrap()
    );

    // Every field the manifest sets appears somewhere in the JWTs.
    let text =
        serde_json::to_string(&tokens.values().map(|t| jwt_claims(t)).collect::<Vec<_>>()).unwrap();
    let wire_fields: BTreeSet<&str> = [
        "exp",
        "signing_keys",
        "account_server_url",
        "operator_service_urls",
        "system_account",
        "assert_server_version",
        "strict_signing_key_usage",
        "tags",
        "imports",
        "exports",
        "limits",
        "tiered_limits",
        "revocations",
        "default_permissions",
        "mappings",
        "authorization",
        "description",
        "info_url",
        "token_req",
        "response_type",
        "response_threshold",
        "service_latency",
        "account_token_position",
        "advertise",
        "allow_trace",
        "local_subject",
        "share",
        "src",
        "times",
        "times_location",
        "bearer_token",
        "allowed_connection_types",
        "issuer_account",
        "disallow_bearer",
        "max_bytes_required",
        "mem_max_stream_bytes",
        "disk_max_stream_bytes",
        "max_ack_pending",
        "auth_users",
        "allowed_accounts",
        "xkey",
        "cluster",
        "weight",
    ]
    .into_iter()
    .collect();
    for field in wire_fields {
        assert!(
            text.contains(&format!("\"{field}\":")),
            "no JWT carries `{field}`"
        );
    }
}
