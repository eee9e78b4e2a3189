//! A deleted user's revocation survives the loss of any one file: the
//! account JWT damaged, rolled back to an older (validly signed) version or
//! wiped, or the lock's copy of the record rolled back. Each time the plan
//! shows the repair, apply makes it, and a real nats-server (every version
//! found) refuses the deleted user's old creds afterwards.

mod support;

use std::fs;

use support::cli::Project;
use support::nats::{self, NatsServer};

const ACCOUNT_JWT: &str = "O2/accounts/A/A.jwt";

/// The walkthrough applied, then user U deleted and applied: returns the
/// project, U's creds from before the deletion, the account JWT from before
/// the deletion (valid, without the revocation) and U's public key.
fn deleted_user() -> (Project, String, String, String) {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let creds = p.creds("A/U");
    let (jwt, _) = nats::parse_creds(&creds).unwrap();
    let key = nats::jwt_subject(&jwt);
    let old_account = p.store_file(ACCOUNT_JWT);
    let text = fs::read_to_string(&p.manifest).unwrap();
    let without = text.replacen(
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "",
        1,
    );
    assert_ne!(text, without);
    fs::write(&p.manifest, without).unwrap();
    p.apply();
    assert!(revoked(&p, &key), "the deletion revokes U");
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    assert!(
        lock.contains("[revocations.\"account.O2/A\"]") && lock.contains(&key),
        "the lock records the revocation:\n{lock}"
    );
    (p, creds, old_account, key)
}

fn revoked(p: &Project, key: &str) -> bool {
    let claims = nats::jwt_claims(&p.store_file(ACCOUNT_JWT));
    claims["nats"]["revocations"][key].is_i64()
}

fn plan(p: &Project) -> String {
    p.redact(&p.run_without_identity(&["plan"]).success().stdout)
}

/// Applies the repair: the account revokes `key` again, the plan is empty
/// and every server refuses U's creds.
fn repair_and_check(p: &Project, key: &str, creds: &str) {
    p.apply();
    assert!(revoked(p, key), "the account JWT revokes U again");
    let run = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "plan converged:\n{}", run.stdout);
    for binary in nats::nats_server_binaries() {
        let config = p.memory_resolver_config("O2");
        let server = NatsServer::start_binary_with(&binary, |_| config);
        let v = server.version().to_string();
        let err = server
            .connect(creds)
            .expect_err("a deleted user's creds must stay revoked");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
    }
}

#[test]
fn a_rolled_back_account_jwt_gets_its_revocation_back() {
    let (p, creds, old_account, key) = deleted_user();
    // An older, validly signed version of the account: no revocation.
    fs::write(p.path().join("store").join(ACCOUNT_JWT), &old_account).unwrap();
    let text = plan(&p);
    assert!(
        text.contains("restores the revocation of <KEY> recorded in natsform.lock"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    repair_and_check(&p, &key, &creds);
}

#[test]
fn a_damaged_account_jwt_is_reissued_with_its_revocation() {
    let (p, creds, _, key) = deleted_user();
    fs::write(p.path().join("store").join(ACCOUNT_JWT), "eyJnot.a.jwt").unwrap();
    let text = plan(&p);
    assert!(text.contains("cannot be trusted"), "{text}");
    assert!(text.contains("revocations:"), "{text}");
    repair_and_check(&p, &key, &creds);
}

#[test]
fn a_wiped_account_jwt_is_created_again_with_its_revocation() {
    let (p, creds, _, key) = deleted_user();
    fs::remove_file(p.path().join("store").join(ACCOUNT_JWT)).unwrap();
    let text = plan(&p);
    assert!(
        text.contains("restores the revocation of <KEY> recorded in natsform.lock"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    repair_and_check(&p, &key, &creds);
}

#[test]
fn a_lock_that_lost_the_record_is_repaired_from_the_account_jwt() {
    let (p, creds, _, key) = deleted_user();
    let lock_path = p.path().join("natsform.lock");
    let lock = fs::read_to_string(&lock_path).unwrap();
    let start = lock.find("\n[revocations.").unwrap();
    fs::write(&lock_path, &lock[..start + 1]).unwrap();
    let text = plan(&p);
    assert!(
        text.contains("natsform.lock will record the revocations of account.O2/A"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    p.apply();
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), lock);
    // Now the account JWT alone can be lost again without losing U's revocation.
    fs::remove_file(p.path().join("store").join(ACCOUNT_JWT)).unwrap();
    repair_and_check(&p, &key, &creds);
}

/// A hand-made lock entry revoking a kept user: the plan names the user it
/// hits and issues that user again after it, so the manifest's users keep a
/// working JWT (and a reviewer sees the revocation).
#[test]
fn a_lock_only_revocation_of_a_kept_user_is_shown_and_the_user_reissued() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let old = p.creds("A/worker");
    let key = nats::jwt_subject(&nats::parse_creds(&old).unwrap().0);
    let iat = nats::jwt_claims(&p.store_file("O2/accounts/A/users/worker.jwt"))["iat"]
        .as_i64()
        .unwrap();
    let lock_path = p.path().join("natsform.lock");
    let mut lock = fs::read_to_string(&lock_path).unwrap();
    lock.push_str(&format!(
        "\n[revocations.\"account.O2/A\"]\n{key} = {iat}\n"
    ));
    fs::write(&lock_path, lock).unwrap();
    let text = plan(&p);
    assert!(
        text.contains("it is the key of user.O2/A/worker, which the manifest keeps"),
        "{text}"
    );
    assert!(
        text.contains("user.O2/A/worker will be re-issued"),
        "{text}"
    );
    assert!(
        text.contains(
            "is revoked by account.O2/A at <DATE>; it is issued again after the revocation"
        ),
        "{text}"
    );
    p.apply();
    let run = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "plan converged:\n{}", run.stdout);
    let new = p.creds("A/worker");
    worker_works_and_old_creds_are_refused(&p, &new, &old);
}

/// A lock entry revoking every user until a time still to come would also
/// revoke every JWT apply issues: refused, with nothing written.
#[test]
fn a_future_revocation_only_the_lock_records_is_refused() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let lock_path = p.path().join("natsform.lock");
    let mut lock = fs::read_to_string(&lock_path).unwrap();
    lock.push_str("\n[revocations.\"account.O2/A\"]\n\"*\" = 99999999999\n");
    fs::write(&lock_path, lock).unwrap();
    let before = p.files();
    let plan = p.run_without_identity(&["plan"]).failure();
    assert!(
        plan.stdout.contains("Error: account.O2/A: natsform.lock records a revocation of * at 5138-11-16T09:46:39Z, which is in the future"),
        "{}",
        plan.stdout
    );
    let apply = p.run(&["apply", "--auto-approve"]).failure();
    assert!(
        apply.stderr.contains("apply refuses this plan"),
        "{}",
        apply.stderr
    );
    assert_eq!(p.files(), before);
}

/// Rotating a user's identity key (a new label) retires the old key: its
/// account revokes it, so creds handed out for it stop working, and the
/// user's new creds work (every server version found).
#[test]
fn rotating_a_users_key_revokes_the_old_one() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let old = p.creds("A/worker");
    let text = fs::read_to_string(&p.manifest).unwrap();
    let from = "[operators.O2.accounts.A.users.worker]\nsigner = \"service\"\n";
    assert!(text.contains(from));
    fs::write(
        &p.manifest,
        text.replacen(from, &format!("{from}key = \"v2\"\n"), 1),
    )
    .unwrap();
    let plan = plan(&p);
    assert!(
        plan.contains("reason: revokes the old identity key of user.O2/A/worker"),
        "{plan}"
    );
    assert!(plan.contains("user.O2/A/worker will be replaced"), "{plan}");
    p.apply();
    let run = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "plan converged:\n{}", run.stdout);
    let new = p.creds("A/worker");
    assert_ne!(new, old);
    worker_works_and_old_creds_are_refused(&p, &new, &old);
}

/// On every server version found: the worker's `new` creds connect and
/// subscribe within its role, its `old` creds are refused.
fn worker_works_and_old_creds_are_refused(p: &Project, new: &str, old: &str) {
    for binary in nats::nats_server_binaries() {
        let config = p.memory_resolver_config("O2");
        let server = NatsServer::start_binary_with(&binary, |_| config);
        let v = server.version().to_string();
        let mut c = server.connect_ok(new);
        c.subscribe("q.work")
            .unwrap_or_else(|e| panic!("{v}: the new creds work: {e}"));
        let err = server
            .connect(old)
            .expect_err("the old creds must be refused");
        assert!(err.contains("Authorization Violation"), "{v}: {err}");
    }
}
