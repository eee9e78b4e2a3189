//! `natsform import nsc` on copies of the Go-made nsc fixture: the manifest
//! and lock it writes, `plan` = no changes right after, the nsc directories
//! untouched, the revoked user kept revoked, the original creds still
//! working on real servers, a role's key rotation re-issuing exactly its
//! users, and each refusal with a clear message and nothing written.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use data_encoding::BASE64URL_NOPAD;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::cli::{find_seeds, repo_root, Project};
use support::nats::{self, NatsServer};

const RECIPIENT: &str = "age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9";

/// A temporary directory holding `nsc/` (a copy of the fixture) and
/// `proj/` (the project the import writes, empty until then).
fn setup() -> (Project, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let nsc = dir.path().join("nsc");
    copy_dir(&repo_root().join("tests/fixtures/nsc-store"), &nsc);
    let proj = dir.path().join("proj");
    fs::create_dir(&proj).unwrap();
    let manifest = proj.join("natsform.toml");
    (Project { dir, manifest }, nsc)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` (relative path → SHA-256), links included as links.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("link {}", fs::read_link(&p).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel.clone(), "dir".into());
                walk(root, &p, out);
            } else {
                out.insert(rel, format!("{:x}", Sha256::digest(fs::read(&p).unwrap())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn import_args(nsc: &Path) -> Vec<String> {
    vec![
        "import".into(),
        "nsc".into(),
        "--store".into(),
        nsc.join("stores").display().to_string(),
        "--keys".into(),
        nsc.join("keys").display().to_string(),
        "--recipient".into(),
        RECIPIENT.into(),
    ]
}

fn import_cmd<'p>(project: &'p Project, nsc: &Path) -> support::cli::Natsform<'p> {
    let args = import_args(nsc);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    project.natsform(&args)
}

fn import(project: &Project, nsc: &Path) -> support::cli::Run {
    import_cmd(project, nsc).run()
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.as_ref().display()))
}

/// The project directory holds nothing (a refused import wrote nothing).
fn assert_nothing_written(project: &Project) {
    let left: Vec<_> = fs::read_dir(project.project_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the import left {left:?}");
}

#[test]
fn import_writes_manifest_and_lock_and_plan_shows_no_changes() {
    let (project, nsc) = setup();
    let before = hashes(&nsc);
    let run = natsform_snapshot!(name = "import_run", import_cmd(&project, &nsc));
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(
        "imported_manifest",
        project.filter_keeping_dates(&read(&project.manifest))
    );
    insta::assert_snapshot!(
        "imported_lock",
        project.filter(&read(project.project_dir().join("natsform.lock")))
    );

    let plan = project.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 0,
        "plan right after import: {}{}",
        plan.stdout, plan.stderr
    );
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);

    // The store is the nsc JWTs byte for byte, the revoked user excepted.
    let store = project.project_dir().join("store/O2");
    let stores = nsc.join("stores/O2");
    for rel in [
        "O2.jwt",
        "accounts/A/A.jwt",
        "accounts/A/users/U.jwt",
        "accounts/A/users/worker.jwt",
        "accounts/SYS/SYS.jwt",
        "accounts/SYS/users/sys.jwt",
        "accounts/sales/sales.jwt",
        "accounts/sales/users/joe.jwt",
        "accounts/sales/users/pam.jwt",
    ] {
        assert_eq!(read(store.join(rel)), read(stores.join(rel)), "{rel}");
    }
    // The revoked user is not a user of the manifest (it would be issued
    // again, after its revocation) and keeps its revocation in both records.
    assert!(!store.join("accounts/A/users/gone.jwt").exists());
    let gone = nats::jwt_subject(&read(stores.join("accounts/A/users/gone.jwt")));
    let manifest = read(&project.manifest);
    assert!(!manifest.contains("users.gone"), "{manifest}");
    assert!(manifest.contains(&gone), "{manifest}");
    let lock = read(project.project_dir().join("natsform.lock"));
    assert!(lock.contains(&format!("{gone} = ")), "{lock}");

    // Applying changes nothing either, and no seed is in plaintext anywhere.
    let project_before = hashes(project.project_dir());
    let apply = project.run(&["apply", "--auto-approve"]).success();
    assert!(apply.stdout.contains("No changes"), "{}", apply.stdout);
    assert_eq!(hashes(project.project_dir()), project_before);
    for (path, bytes) in project.files() {
        if path.starts_with("nsc") {
            continue;
        }
        assert!(
            find_seeds(&bytes).is_empty(),
            "a seed in {}",
            path.display()
        );
    }
    // 13 keys have seeds (every bound key; the revoked user's is not
    // needed): operator, account and signing-key seeds one file each, users'
    // seeds in their account's bundle, which the demo identity opens (the
    // age crate, as `age -d` would) and whose every line holds its key's seed.
    let vault_dir = project.project_dir().join("vault");
    let names: Vec<String> = fs::read_dir(&vault_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let own = names
        .iter()
        .filter(|n| n.ends_with(".age") && !n.ends_with(".users.age"))
        .count();
    let identity_text = fs::read_to_string(support::cli::demo_identity()).unwrap();
    let identity: age::x25519::Identity = identity_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .parse()
        .unwrap();
    let mut users = 0;
    for bundle in names.iter().filter(|n| n.ends_with(".users.age")) {
        let bytes = fs::read(vault_dir.join(bundle)).unwrap();
        let d = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut d
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap(),
            &mut plain,
        )
        .unwrap();
        for line in plain.lines().skip(1) {
            let (public, seed) = line.split_once(' ').unwrap();
            assert_eq!(
                nkeys::KeyPair::from_seed(seed).unwrap().public_key(),
                public
            );
            users += 1;
        }
        let index = bundle.replace(".users.age", ".users.keys");
        assert!(names.contains(&index), "{names:?}");
    }
    assert!(users > 0);
    assert_eq!(own + users, 13, "{names:?}");

    assert_eq!(hashes(&nsc), before, "the nsc directories were modified");
}

#[test]
fn yaml_import_round_trips_and_plans_no_changes() {
    let (mut project, nsc) = setup();
    project.manifest = project.project_dir().join("natsform.yaml");
    let mut args = import_args(&nsc);
    args.extend(["--format".to_string(), "yaml".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // No -f: the import writes natsform.yaml in the current directory.
    let run = project
        .natsform(&args)
        .without_manifest_flag()
        .current_dir(project.project_dir())
        .run()
        .success();
    assert!(run.stdout.contains("natsform.yaml"), "{}", run.stdout);
    let text = read(&project.manifest);
    assert!(text.contains("operators:\n  O2:\n"), "{text}");
    let plan = project.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
}

/// Starts `binary` trusting the project's operator O2 with every account preloaded.
fn server(project: &Project, binary: &Path) -> NatsServer {
    let store = project.project_dir().join("store/O2");
    let operator = read(store.join("O2.jwt"));
    let mut accounts = Vec::new();
    let mut sys = String::new();
    for name in ["A", "SYS", "sales"] {
        let jwt = read(store.join(format!("accounts/{name}/{name}.jwt")));
        if name == "SYS" {
            sys = nats::jwt_subject(&jwt);
        }
        accounts.push((nats::jwt_subject(&jwt), jwt));
    }
    accounts.sort();
    let config = nats::memory_resolver_config(&operator, &sys, &accounts);
    NatsServer::start_binary_with(binary, |_| config)
}

fn fixture_creds(nsc: &Path, account: &str, user: &str) -> String {
    read(nsc.join(format!("creds/O2/{account}/{user}.creds")))
}

#[track_caller]
fn assert_denied(result: Result<impl std::fmt::Debug, String>, expected: &str) {
    match result {
        Ok(v) => panic!("expected an error containing {expected:?}, got Ok({v:?})"),
        Err(e) => assert!(e.contains(expected), "expected {expected:?} in {e:?}"),
    }
}

#[test]
fn original_creds_still_connect_after_import_and_apply() {
    let (project, nsc) = setup();
    import(&project, &nsc).success();
    project.apply();
    for binary in nats::nats_server_binaries() {
        let server = server(&project, &binary);
        let version = server.version().to_string();
        let mut u = server
            .connect(&fixture_creds(&nsc, "A", "U"))
            .unwrap_or_else(|e| panic!("{version}: U: {e}"));
        u.publish("a.x", b"").expect("U may publish a.x");
        assert_denied(u.publish("b.x", b""), "Permissions Violation for Publish");
        let mut worker = server.connect(&fixture_creds(&nsc, "A", "worker")).unwrap();
        worker
            .subscribe("q.work")
            .expect("worker may subscribe q.work");
        assert_denied(
            worker.publish("foo", b""),
            "Permissions Violation for Publish",
        );
        let mut pam = server
            .connect(&fixture_creds(&nsc, "sales", "pam"))
            .unwrap();
        pam.subscribe("sales.support.pam.x")
            .expect("pam's own subject");
        assert_denied(
            pam.subscribe("sales.leads.joe.x"),
            "Permissions Violation for Subscription",
        );
        let mut joe = server
            .connect(&fixture_creds(&nsc, "sales", "joe"))
            .unwrap();
        joe.subscribe("sales.leads.joe.x")
            .expect("joe's own subject");
        server
            .connect(&fixture_creds(&nsc, "SYS", "sys"))
            .unwrap()
            .flush()
            .unwrap();
        // The revoked user stays revoked.
        assert_denied(
            server.connect(&fixture_creds(&nsc, "A", "gone")),
            "Authorization Violation",
        );
    }
}

#[test]
fn rotating_one_roles_key_reissues_exactly_its_users() {
    let (project, nsc) = setup();
    import(&project, &nsc).success();
    let mut text = read(&project.manifest);
    // The role's table is implicit (only its pub/sub/resp tables are
    // written); declaring it now is valid TOML.
    text.push_str("\n[operators.O2.accounts.A.signing_keys.service]\nkeys = [\"v2\"]\n");
    fs::write(&project.manifest, text).unwrap();
    let store = project.project_dir().join("store");
    let before = hashes(&store);

    let plan = project.run(&["plan"]).success();
    let changed: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("  # "))
        .collect();
    assert_eq!(
        changed,
        [
            "  # account.O2/A will be updated",
            "  # user.O2/A/worker will be re-issued"
        ],
        "{}",
        plan.stdout
    );
    project.apply();
    let after = hashes(&store);
    let differ: Vec<&PathBuf> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert_eq!(
        differ,
        [
            Path::new("O2/accounts/A/A.jwt"),
            Path::new("O2/accounts/A/users/worker.jwt")
        ],
        "only the account (new role key) and the role's user change"
    );
    let new_worker = project.creds("O2/A/worker");
    let lock = read(project.project_dir().join("natsform.lock"));
    let new_key = lock
        .lines()
        .find_map(|l| l.strip_prefix("\"signing_key.O2/A/service#v2\" = "))
        .expect("the new role key is in the lock")
        .trim_matches('"')
        .to_string();
    let (jwt, _) = nats::parse_creds(&new_worker).unwrap();
    assert_eq!(nats::jwt_claims(&jwt)["iss"], json!(new_key));

    for binary in nats::nats_server_binaries() {
        let server = server(&project, &binary);
        let mut worker = server
            .connect(&new_worker)
            .expect("the re-issued worker connects");
        worker
            .subscribe("q.work")
            .expect("still under the role's template");
        assert_denied(
            worker.publish("foo", b""),
            "Permissions Violation for Publish",
        );
        // Users of other roles keep their original creds.
        let mut u = server.connect(&fixture_creds(&nsc, "A", "U")).unwrap();
        u.publish("a.x", b"").unwrap();
        server
            .connect(&fixture_creds(&nsc, "sales", "pam"))
            .unwrap();
        assert_denied(
            server.connect(&fixture_creds(&nsc, "A", "gone")),
            "Authorization Violation",
        );
    }
}

#[test]
fn no_store_is_refused() {
    let (project, nsc) = setup();
    fs::remove_dir_all(nsc.join("stores")).unwrap();
    let run = natsform_snapshot!(name = "no_store", import_cmd(&project, &nsc));
    assert_eq!(run.code, 1);
    assert_nothing_written(&project);
}

#[test]
fn keystore_without_seeds_is_refused() {
    let (project, nsc) = setup();
    fs::remove_dir_all(nsc.join("keys/keys")).unwrap();
    let run = natsform_snapshot!(name = "keystore_without_seeds", import_cmd(&project, &nsc));
    assert_eq!(run.code, 1);
    assert_nothing_written(&project);
}

/// Signs `payload` (with `iss` set to the signer) as the Go library would
/// frame it: header, payload, Ed25519 signature, base64url without padding.
fn sign(mut payload: Value, seed: &str) -> String {
    let kp = nkeys::KeyPair::from_seed(seed.trim()).unwrap();
    payload["iss"] = json!(kp.public_key());
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = BASE64URL_NOPAD.encode(payload.to_string().as_bytes());
    let input = format!("{header}.{body}");
    let sig = kp.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", BASE64URL_NOPAD.encode(&sig))
}

fn seed_path(keys: &Path, public: &str) -> PathBuf {
    keys.join("keys")
        .join(&public[..1])
        .join(&public[1..3])
        .join(format!("{public}.nk"))
}

#[test]
fn an_nsc_only_feature_is_refused_with_the_reason() {
    let (project, nsc) = setup();
    let path = nsc.join("stores/O2/accounts/A/A.jwt");
    let mut claims = nats::jwt_claims(&read(&path));
    claims["nats"]["cluster_traffic"] = json!("owner");
    let issuer = claims["iss"].as_str().unwrap().to_string();
    let seed = read(seed_path(&nsc.join("keys"), &issuer));
    fs::write(&path, sign(claims, &seed)).unwrap();
    let before = hashes(&nsc);
    let run = natsform_snapshot!(name = "nsc_only_feature", import_cmd(&project, &nsc));
    assert_eq!(run.code, 1);
    assert_nothing_written(&project);
    assert_eq!(hashes(&nsc), before);
}

#[test]
fn a_scoped_user_with_permissions_of_its_own_is_refused() {
    let (project, nsc) = setup();
    let path = nsc.join("stores/O2/accounts/A/users/worker.jwt");
    let mut claims = nats::jwt_claims(&read(&path));
    claims["nats"]["pub"]["allow"] = json!([">"]);
    let issuer = claims["iss"].as_str().unwrap().to_string();
    let seed = read(seed_path(&nsc.join("keys"), &issuer));
    fs::write(&path, sign(claims, &seed)).unwrap();
    let run = import(&project, &nsc).failure();
    assert!(
        run.stderr.contains(
            "user `O2/A/worker` is signed by the scoped role `service` but carries permissions"
        ),
        "{}",
        run.stderr
    );
    assert_nothing_written(&project);
}

#[test]
fn a_store_of_two_operators_imports_both() {
    let (project, nsc) = setup();
    // A second operator, made the way nsc lays it out, signed here.
    let op = nkeys::KeyPair::new_operator();
    let sys = nkeys::KeyPair::new_account();
    let acc = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let dir = nsc.join("stores/O3");
    fs::create_dir_all(dir.join("accounts/X/users")).unwrap();
    fs::create_dir_all(dir.join("accounts/SYS")).unwrap();
    fs::write(
        dir.join(".nsc"),
        r#"{"managed":false,"name":"O3","kind":"operator","version":"1"}"#,
    )
    .unwrap();
    let iat = 1_795_368_145;
    let op_seed = op.seed().unwrap();
    let op_jwt = sign(
        json!({"jti": "J", "iat": iat, "name": "O3", "sub": op.public_key(),
               "nats": {"system_account": sys.public_key(), "type": "operator", "version": 2}}),
        &op_seed,
    );
    let account = |name: &str, key: &nkeys::KeyPair| {
        sign(
            json!({"jti": "J", "iat": iat, "name": name, "sub": key.public_key(),
                   "nats": {"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                       "exports": -1, "wildcards": true, "conn": -1, "leaf": -1},
                            "default_permissions": {"pub": {}, "sub": {}},
                            "type": "account", "version": 2}}),
            &op_seed,
        )
    };
    let user_jwt = sign(
        json!({"jti": "J", "iat": iat, "name": "x", "sub": user.public_key(),
               "nats": {"pub": {"allow": ["x.>"]}, "sub": {}, "subs": -1, "data": -1,
                        "payload": -1, "type": "user", "version": 2}}),
        &acc.seed().unwrap(),
    );
    fs::write(dir.join("O3.jwt"), op_jwt).unwrap();
    fs::write(dir.join("accounts/SYS/SYS.jwt"), account("SYS", &sys)).unwrap();
    fs::write(dir.join("accounts/X/X.jwt"), account("X", &acc)).unwrap();
    fs::write(dir.join("accounts/X/users/x.jwt"), user_jwt).unwrap();
    for kp in [&op, &sys, &acc, &user] {
        let p = seed_path(&nsc.join("keys"), &kp.public_key());
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, kp.seed().unwrap()).unwrap();
    }
    let run = import(&project, &nsc).success();
    assert!(
        run.stdout
            .contains("Imported 2 operators, 5 accounts and 6 users"),
        "{}",
        run.stdout
    );
    let manifest = read(&project.manifest);
    assert!(manifest.contains("[operators.O2]"), "{manifest}");
    assert!(
        manifest.contains("[operators.O3.accounts.X.users.x.pub]"),
        "{manifest}"
    );
    let plan = project.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
}

#[test]
fn a_key_without_its_seed_is_imported_public_key_only() {
    let (project, nsc) = setup();
    let u = nats::jwt_subject(&read(nsc.join("stores/O2/accounts/A/users/U.jwt")));
    fs::remove_file(seed_path(&nsc.join("keys"), &u)).unwrap();
    let run = import(&project, &nsc).success();
    assert!(
        run.stderr.contains(&format!(
            "user.O2/A/U#v1 ({u}): no seed in the keystore, imported public-key-only"
        )),
        "{}",
        run.stderr
    );
    let manifest = read(&project.manifest);
    assert!(
        manifest.contains(&format!("public_key = \"{u}\"")),
        "{manifest}"
    );
    let plan = project.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
}

#[test]
fn an_existing_project_is_never_overwritten() {
    let (project, nsc) = setup();
    fs::write(project.project_dir().join("natsform.lock"), "keep me").unwrap();
    let run = import(&project, &nsc).failure();
    assert!(
        run.stderr.contains("natsform.lock already exists"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = fs::read_dir(project.project_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["natsform.lock"]);
    assert_eq!(read(project.project_dir().join("natsform.lock")), "keep me");
}

#[test]
fn hostile_stores_are_refused_without_following_links_or_showing_seeds() {
    // A link in the store, pointing out of it.
    let (project, nsc) = setup();
    std::os::unix::fs::symlink(
        "/etc/hostname",
        nsc.join("stores/O2/accounts/A/users/evil.jwt"),
    )
    .unwrap();
    let run = import(&project, &nsc).failure();
    assert!(run.stderr.contains("link"), "{}", run.stderr);
    assert_nothing_written(&project);

    // A name with a terminal escape sequence: refused, shown escaped.
    let (project, nsc) = setup();
    let users = nsc.join("stores/O2/accounts/A/users");
    fs::copy(users.join("U.jwt"), users.join("U\u{1b}[31m.jwt")).unwrap();
    let run = import(&project, &nsc).failure();
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    assert!(
        run.stderr.contains("U\\u{1b}[31m") || run.stderr.contains("U\\x1b[31m"),
        "{}",
        run.stderr
    );
    assert_nothing_written(&project);

    // A keystore file whose seed belongs to another key: refused, unshown.
    let (project, nsc) = setup();
    let keys = nsc.join("keys");
    let u = nats::jwt_subject(&read(nsc.join("stores/O2/accounts/A/users/U.jwt")));
    let worker = nats::jwt_subject(&read(nsc.join("stores/O2/accounts/A/users/worker.jwt")));
    fs::copy(seed_path(&keys, &worker), seed_path(&keys, &u)).unwrap();
    let run = import(&project, &nsc).failure();
    assert!(
        run.stderr.contains("holds the seed of another key"),
        "{}",
        run.stderr
    );
    assert_nothing_written(&project);

    // A JWT that does not verify (its payload edited, signature kept).
    let (project, nsc) = setup();
    let path = nsc.join("stores/O2/accounts/A/users/U.jwt");
    let jwt = read(&path);
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let mut claims = nats::jwt_claims(&jwt);
    claims["nats"]["pub"]["allow"] = json!([">"]);
    parts[1] = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    fs::write(&path, parts.join(".")).unwrap();
    let run = import(&project, &nsc).failure();
    assert!(run.stderr.contains("does not verify"), "{}", run.stderr);
    assert_nothing_written(&project);
}

#[test]
fn an_account_signed_by_the_operators_own_key_is_resigned_only_when_allowed() {
    let (project, nsc) = setup();
    let path = nsc.join("stores/O2/accounts/sales/sales.jwt");
    let claims = nats::jwt_claims(&read(&path));
    let op = nats::jwt_subject(&read(nsc.join("stores/O2/O2.jwt")));
    let seed = read(seed_path(&nsc.join("keys"), &op));
    fs::write(&path, sign(claims, &seed)).unwrap();
    natsform_snapshot!(name = "resign_refused", import_cmd(&project, &nsc));
    assert_nothing_written(&project);

    let mut args = import_args(&nsc);
    args.push("--allow-resign".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = project.natsform(&args).run().success();
    assert!(
        run.stderr
            .contains("the first apply re-signs account.O2/sales"),
        "{}",
        run.stderr
    );
    let plan = project.run(&["plan"]).success();
    assert!(
        plan.stdout.contains("0 to update, 1 to re-issue"),
        "{}",
        plan.stdout
    );
    // The re-signed account keeps its key: sales' original creds still work.
    project.apply();
    for binary in nats::nats_server_binaries() {
        let server = server(&project, &binary);
        let mut pam = server
            .connect(&fixture_creds(&nsc, "sales", "pam"))
            .unwrap();
        pam.subscribe("sales.support.pam.x")
            .expect("pam's own subject");
    }
}
