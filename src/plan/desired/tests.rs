//! Manifest fields reach the wire JSON in the units NATS expects.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::manifest::load::{parse, Format};
use crate::plan::keyref::KeyBook;
use crate::tree::ObjectId;

const BASE: &str = r#"
[operators.O]
system_account = "SYS"
[operators.O.accounts.SYS.users.sys]
"#;

/// `manifest` parsed and validated, with a key generated for every key it
/// needs: the book of their public keys, and the pairs by public key.
fn keyed(
    manifest: &str,
) -> (
    crate::manifest::load::Loaded,
    KeyBook,
    HashMap<String, crate::keys::KeyPair>,
) {
    let loaded = parse(Path::new("m.toml"), Format::Toml, manifest.to_string()).unwrap();
    crate::manifest::validate(&loaded).unwrap();
    let mut book = KeyBook::new();
    let mut pairs = HashMap::new();
    for (addr, (kind, _)) in super::required_keys(&loaded.manifest) {
        let kp = crate::keys::generate(kind);
        book.insert(addr, kp.public_key());
        pairs.insert(kp.public_key(), kp);
    }
    (loaded, book, pairs)
}

fn typed(extra: &str, id: ObjectId) -> super::DesiredClaims {
    let loaded = parse(Path::new("m.toml"), Format::Toml, format!("{BASE}{extra}")).unwrap();
    crate::manifest::validate(&loaded).unwrap();
    super::desired(&loaded.manifest, &KeyBook::new())
        .remove(&id)
        .unwrap()
        .claims
}

/// The claims as Go writes them (zero values omitted).
fn claims(extra: &str, id: ObjectId) -> Value {
    typed(extra, id).value()
}

#[test]
fn user_rules_limits_and_expiry_use_nats_units() {
    let c = claims(
        r#"
[operators.O.accounts.A.users.u]
resp = { max = 2, ttl = "1m" }
src = ["10.0.0.0/8"]
times = [{ start = "08:00:00", end = "17:00:00" }]
locale = "UTC"
limits = { subs = 10, payload = "1KiB" }
bearer_token = true
allowed_connection_types = ["STANDARD", "WEBSOCKET"]
expires = 2027-01-01
"#,
        ObjectId::user("O", "A", "u"),
    );
    assert_eq!(c["exp"], json!(1_798_761_600));
    let n = &c["nats"];
    assert_eq!(n["resp"], json!({"max": 2, "ttl": 60_000_000_000i64}));
    assert_eq!(n["src"], json!(["10.0.0.0/8"]));
    assert_eq!(n["times_location"], json!("UTC"));
    assert_eq!(
        (n["subs"].clone(), n["data"].clone(), n["payload"].clone()),
        (json!(10), json!(-1), json!(1024))
    );
    assert_eq!(n["bearer_token"], json!(true));
    assert_eq!(
        n["allowed_connection_types"],
        json!(["STANDARD", "WEBSOCKET"])
    );
}

#[test]
fn account_limits_default_to_unlimited_and_sizes_convert() {
    let c = typed(
        r#"
[operators.O.accounts.A]
limits = { conn = 1, payload = "1MiB", wildcard_exports = false }
jetstream = { disk_storage = "1GB", streams = 2 }
"#,
        ObjectId::account("O", "A"),
    );
    let l = &c.account().unwrap().nats.limits;
    assert_eq!(l.account.conn, 1);
    assert_eq!(l.nats.payload, 1_048_576);
    assert_eq!(l.nats.subs, -1);
    assert!(!l.account.wildcard_exports);
    assert_eq!(l.jetstream.disk_storage, 1_000_000_000);
    assert_eq!(l.jetstream.memory_storage, 0);
    assert_eq!(l.jetstream.streams, 2);
    assert_eq!(l.jetstream.consumer, -1);
}

#[test]
fn imports_by_name_resolve_to_the_exporters_key() {
    let c = claims(
        r#"
[[operators.O.accounts.A.exports]]
subject = "svc.>"
type = "service"
response_threshold = "2s"
[[operators.O.accounts.A.exports]]
subject = "private.>"
type = "stream"
private = true
[[operators.O.accounts.B.imports]]
subject = "svc.echo"
from = "A"
type = "service"
[[operators.O.accounts.B.imports]]
subject = "private.x"
from = "A"
type = "stream"
"#,
        ObjectId::account("O", "B"),
    );
    let imports = c["nats"]["imports"].as_array().unwrap();
    assert_eq!(imports[0]["account"], json!("(new key account.O/A#v1)"));
    assert!(imports[0].get("token").is_none());
    // A private export imported by name: apply fills in the activation.
    assert_eq!(
        imports[1]["token"],
        json!(crate::plan::keyref::ACTIVATION_PLACEHOLDER)
    );
    let loaded = parse(
        Path::new("m.toml"),
        Format::Toml,
        format!("{BASE}[[operators.O.accounts.A.exports]]\nsubject = \"p\"\ntype = \"stream\"\nprivate = true\n[[operators.O.accounts.B.imports]]\nsubject = \"p\"\nfrom = \"A\"\ntype = \"stream\"\n"),
    )
    .unwrap();
    let needs = super::activations_needed(&loaded.manifest);
    assert_eq!(needs.len(), 1);
    assert_eq!(needs[0].exporter, ObjectId::account("O", "A"));
}

/// The fast path of the planner: what apply signs for desired claims is,
/// byte for byte, what `payload_at` predicts from the same claims, so an
/// unchanged stored JWT is recognised without a canonical round trip.
#[test]
fn signed_payload_is_predicted_byte_for_byte() {
    let manifest = r#"
[operators.O]
system_account = "SYS"
signing_keys = ["ops"]
expires = "365d"
[operators.O.accounts.SYS.users.sys]
[operators.O.accounts.A]
limits = { conn = 10 }
jetstream = { disk_storage = "1GB" }
mappings = { "a.*" = [{ subject = "b.$1", weight = 40 }, { subject = "c.$1", weight = 60 }] }
[[operators.O.accounts.A.exports]]
subject = "svc.>"
type = "service"
[operators.O.accounts.A.signing_keys.dev]
pub = { allow = ["{{name()}}.>"] }
[operators.O.accounts.A.signing_keys.plain]
scoped = false
[operators.O.accounts.A.users.scoped]
signer = "dev"
tags = ["Team:A"]
[operators.O.accounts.A.users.plain]
signer = "plain"
pub = { allow = ["x.>"], deny = ["x.y"] }
expires = "90d"
[operators.O.accounts.B]
[[operators.O.accounts.B.imports]]
subject = "svc.echo"
from = "A"
type = "service"
[operators.O.accounts.B.users.b]
"#;
    let (loaded, book, pairs) = keyed(manifest);
    let objects = super::desired(&loaded.manifest, &book);
    assert_eq!(objects.len(), 8);
    let iat = 1_800_000_000;
    for (id, d) in &objects {
        let signer = &pairs[d.signer.public.as_ref().unwrap()];
        let token = crate::apply::sign(d, iat, &[], signer).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let payload = data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap();
        let predicted = d.claims.payload_at(iat, d.valid_for, &signer.public_key());
        assert_eq!(
            predicted.as_deref().map(str::as_bytes),
            Some(&payload[..]),
            "{id}"
        );
    }
}

/// A key apply has yet to generate is a `KeyRef` without a public key: the
/// plan lists it, and signing refuses claims that still name it, so its
/// placeholder text can never reach a JWT.
#[test]
fn keys_to_generate_are_typed_and_never_signed() {
    let extra = r#"
[operators.O.accounts.A.signing_keys.dev]
pub = { allow = ["a.>"] }
"#;
    let loaded = parse(Path::new("m.toml"), Format::Toml, format!("{BASE}{extra}")).unwrap();
    crate::manifest::validate(&loaded).unwrap();
    let objects = super::desired(&loaded.manifest, &KeyBook::new());
    let account = &objects[&ObjectId::account("O", "A")];
    assert_eq!(account.subject.public, None);
    assert_eq!(account.new_keys, ["signing_key.O/A/dev#v1"]);
    let signer = crate::keys::generate(crate::keys::KeyKind::Operator);
    let err = crate::apply::sign(account, 1_800_000_000, &[], &signer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the claims name key account.O/A#v1, which has not been generated"
    );
}

/// `name_and_tags_in` reads what a value of the whole claims gives, for
/// every shape a stored (hostile) payload may have.
#[test]
fn name_and_tags_read_as_a_value_reads_them() {
    let by_value = |json: &str| {
        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        (name.to_string(), crate::plan::effective::tags_of(&v))
    };
    for json in [
        r#"{"name":"u","sub":"U","nats":{"tags":["team:a","x"],"type":"user"}}"#,
        r#"{"sub":"U","nats":{"type":"user"}}"#,
        r#"{"name":null,"nats":{"tags":null}}"#,
        r#"{"name":7,"nats":{"tags":["a",1,"b"]}}"#,
        r#"{"name":"first","name":"second","nats":{"tags":["a"],"tags":["b"]}}"#,
        r#"{"name":"u","nats":[]}"#,
        r#"{"name":"u\u0041","nats":{"tags":["t\n"]}}"#,
        r#"[1,2]"#,
        "not json",
        "",
    ] {
        assert_eq!(super::name_and_tags_in(json), by_value(json), "{json}");
    }
}

#[test]
fn name_and_tags_of_odd_shapes_read_as_a_value_reads_them() {
    let by_value = |json: &str| {
        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        (name.to_string(), crate::plan::effective::tags_of(&v))
    };
    for json in [
        r#"{"name":"u","nats":[["a"]]}"#,
        r#"["n",{"tags":["a"]}]"#,
        r#"{"nats":{"tags":["a"]},"nats":{"type":"user"}}"#,
        r#"{"nats":{"tags":{"0":"a"}}}"#,
        r#"{"name":"u"} trailing"#,
    ] {
        assert_eq!(super::name_and_tags_in(json), by_value(json), "{json}");
    }
}

/// A user's payload built from its encoding (the planner's fast
/// comparison) is what apply signs, but for `jti`; users whose encoding
/// it cannot extend are left to the full encoding.
#[test]
fn a_users_masked_payload_is_the_signed_payload_but_for_jti() {
    let manifest = r#"
[operators.O]
system_account = "SYS"
[operators.O.accounts.SYS.users.sys]
[operators.O.accounts.A.signing_keys.dev]
pub = { allow = ["{{name()}}.>", "{{tag(team)}}.\"q\""] }
resp = { max = 1 }
[operators.O.accounts.A.signing_keys.plain]
scoped = false
[operators.O.accounts.A.users.scoped]
signer = "dev"
tags = ["Team:A", "note:é\"quoted\"\\back"]
[operators.O.accounts.A.users.relative]
signer = "plain"
pub = { allow = ["x.>"], deny = ["x.y"] }
limits = { subs = 10, payload = "1KiB" }
expires = "90d"
[operators.O.accounts.A.users.bearer]
signer = "plain"
bearer_token = true
src = ["10.0.0.0/8"]
[operators.O.accounts.A.users.fixed]
signer = "plain"
expires = 2030-01-01
[operators.O.accounts.A.users.typed]
signer = "dev"
tags = ["team:\"type\":"]
"#;
    let (loaded, book, pairs) = keyed(manifest);
    let iat = 1_800_000_000;
    let mut built = Vec::new();
    for (id, d) in super::desired(&loaded.manifest, &book) {
        let super::DesiredClaims::User(user) = &d.claims else {
            continue;
        };
        let signer = &pairs[d.signer.public.as_ref().unwrap()];
        let token = crate::apply::sign(&d, iat, &[], signer).unwrap();
        let payload = data_encoding::BASE64URL_NOPAD
            .decode(token.split('.').nth(1).unwrap().as_bytes())
            .unwrap();
        let Some(masked) = user.masked_payload(iat, d.valid_for, &signer.public_key()) else {
            continue;
        };
        built.push(id.name().to_string());
        assert!(masked.matches(&payload), "{id}: {}", masked.text);
        let mut text = masked.text.clone();
        let jti = &payload[masked.jti.clone()];
        text.replace_range(masked.jti.clone(), std::str::from_utf8(jti).unwrap());
        assert_eq!(text.as_bytes(), &payload[..], "{id}");
        // Anything else differing is no match: another `iat`, issuer or
        // claim, or a `jti` that is not base32.
        let other = user.masked_payload(iat + 1, d.valid_for, &signer.public_key());
        assert!(!other.unwrap().matches(&payload), "{id}");
        let mut forged = payload.clone();
        forged[masked.jti.start] = b'"';
        assert!(!masked.matches(&forged), "{id}");
        let last = forged.len() - 3;
        forged[masked.jti.start] = payload[masked.jti.start];
        forged[last] ^= 1;
        assert!(!masked.matches(&forged), "{id}");
    }
    // A fixed expiry is written before `jti`: encoded. Quotes in a value
    // are escaped, so its text never looks like a field.
    assert_eq!(built, ["bearer", "relative", "scoped", "typed", "sys"]);
    // Zero times are omitted by Go: left to the full encoding.
    let (_, d) = super::desired(&loaded.manifest, &book)
        .into_iter()
        .find(|(id, _)| id.name() == "scoped")
        .unwrap();
    let super::DesiredClaims::User(user) = &d.claims else {
        unreachable!()
    };
    assert!(user.masked_payload(0, None, "ISSUER").is_none());
    assert!(user.masked_payload(-10, Some(10), "ISSUER").is_none());
    assert!(user.masked_payload(5, None, "IS\"SUER").is_none());
}
