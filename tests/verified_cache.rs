//! Plan without re-verifying what was verified: the verified-signature
//! cache in the user's cache directory (`src/verified.rs`). Every run gets
//! its own `XDG_CACHE_HOME` beside the project (tests/support/cli.rs), and
//! `NATSFORM_DEBUG_VERIFY=1` makes natsform say on stderr how many
//! signatures it checked.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::cli::{Project, Run};

/// (JWTs, signatures checked, remembered, verified again for apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    jwts: usize,
    checked: usize,
    remembered: usize,
    again: Option<usize>,
}

/// Runs natsform with `NATSFORM_DEBUG_VERIFY=1`; the run (without the
/// debug line) and the counts.
fn counted(p: &Project, args: &[&str]) -> (Run, Counts) {
    let mut run = p.natsform(args).env("NATSFORM_DEBUG_VERIFY", "1").run();
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("natsform: verify: "))
        .unwrap_or_else(|| panic!("no verify line:\n{}", run.stderr))
        .to_string();
    run.stderr = run.stderr.replace(&format!("{line}\n"), "");
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect();
    let counts = Counts {
        jwts: numbers[0],
        checked: numbers[1],
        remembered: numbers[2],
        again: numbers.get(3).copied(),
    };
    (run, counts)
}

/// The walkthrough, applied, with no cache yet: apply fills the cache
/// with what it signed (see
/// `apply_remembers_what_it_signed_so_the_next_plan_verifies_nothing`),
/// so it is removed to start each test cold.
fn walkthrough() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    fs::remove_dir_all(p.cache_home()).unwrap();
    p
}

/// The JWT at `relative` in the store with its payload changed by `edit`
/// and its signature kept: valid JSON claims that do not verify. Written
/// in place; the forged token is returned.
fn forge(p: &Project, relative: &str, edit: impl Fn(&str) -> String) -> String {
    let path = p.path().join("store").join(relative);
    let token = fs::read_to_string(&path).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = data_encoding::BASE64URL_NOPAD;
    let payload = String::from_utf8(b64.decode(parts[1].as_bytes()).unwrap()).unwrap();
    let edited = edit(&payload);
    assert_ne!(edited, payload);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(edited.as_bytes()),
        parts[2]
    );
    fs::write(&path, &forged).unwrap();
    assert!(natsform::claims::verify_envelope(&forged).is_err());
    forged
}

/// Someone who can write the user's cache directory lists every JWT of
/// the store as verified, forged ones included.
fn poison(p: &Project) -> natsform::verified::Cache {
    let cache =
        natsform::verified::Cache::at(&p.cache_home(), &p.project_dir().canonicalize().unwrap());
    let digests: Vec<_> = p
        .files()
        .iter()
        .filter(|(f, _)| f.extension().is_some_and(|e| e == "jwt"))
        .map(|(_, b)| natsform::verified::digest(std::str::from_utf8(b).unwrap()))
        .collect();
    assert!(cache.save(&digests).unwrap());
    cache
}

/// `payload` (JSON text) with its `iat` set to `iat`.
fn with_iat(payload: &str, iat: i64) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap();
    let old = format!("\"iat\":{}", v["iat"]);
    assert!(payload.contains(&old), "{payload}");
    payload.replacen(&old, &format!("\"iat\":{iat}"), 1)
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// Flips one character of `part` (1 payload, 2 signature) of the JWT at
/// `relative` in the store, keeping its size and its base64url alphabet.
fn tamper(p: &Project, relative: &str, part: usize) -> String {
    let path = p.path().join("store").join(relative);
    let token = fs::read_to_string(&path).unwrap();
    let start: usize = token.split('.').take(part).map(|s| s.len() + 1).sum();
    let i = start + 10;
    let c = token.as_bytes()[i];
    let flipped = if c == b'A' { 'B' } else { 'A' };
    let mut forged = token.clone();
    forged.replace_range(i..i + 1, &flipped.to_string());
    assert_eq!(forged.len(), token.len());
    fs::write(&path, &forged).unwrap();
    forged
}

#[test]
fn a_second_plan_on_a_1000_user_project_verifies_only_what_changed() {
    let p = Project::generated(1000);
    p.apply();
    // Apply remembered what it signed: the first plan verifies nothing.
    // 1 operator, 5 accounts, 1,001 users.
    let (after_apply, c) = counted(&p, &["plan"]);
    assert_eq!(
        c,
        Counts {
            jwts: 1007,
            checked: 0,
            remembered: 1007,
            again: None
        }
    );
    fs::remove_file(p.verified_cache_file()).unwrap();
    let (cold, c) = counted(&p, &["plan"]);
    let cold = cold.success();
    assert_eq!(
        c,
        Counts {
            jwts: 1007,
            checked: 1007,
            remembered: 0,
            again: None
        }
    );
    assert_eq!(after_apply.success().stdout, cold.stdout);
    let cache = p.verified_cache_file();
    assert!(!cache.starts_with(p.path()), "never in the project");
    let bytes = fs::read(&cache).unwrap();
    assert_eq!(bytes.len(), 48 + 32 * 1007, "exactly the store's JWTs");
    assert_eq!(
        fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(cache.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let mtime = fs::metadata(&cache).unwrap().modified().unwrap();

    let (warm, c) = counted(&p, &["plan"]);
    assert_eq!((c.checked, c.remembered), (0, 1007));
    assert_eq!(
        warm.success().stdout,
        cold.stdout,
        "the cache changes no output"
    );
    assert_eq!(fs::read(&cache).unwrap(), bytes, "no churn");
    assert_eq!(fs::metadata(&cache).unwrap().modified().unwrap(), mtime);

    // One user changes: apply writes one JWT, the next plan checks it alone.
    edit(
        &p,
        "[operators.O.accounts.A1.users.u1]\n",
        "[operators.O.accounts.A1.users.u1]\ntags = [\"x\"]\n",
    );
    let (apply, c) = counted(&p, &["apply", "--auto-approve"]);
    apply.success();
    assert_eq!((c.checked, c.remembered), (0, 1007));
    assert_eq!(c.again, Some(1 + 1 + 1), "u1, its account and its operator");
    assert_eq!(
        fs::read(&cache).unwrap().len(),
        48 + 32 * 1007,
        "u1's new JWT in, its old one out"
    );
    let (_, c) = counted(&p, &["plan"]);
    assert_eq!((c.jwts, c.checked, c.remembered), (1007, 0, 1007));

    // --verify-all checks every one, and leaves the cache as it was.
    let (all, c) = counted(&p, &["plan", "--verify-all"]);
    assert_eq!((c.checked, c.remembered), (1007, 0));
    assert!(all.success().stdout.contains("No changes"));
    assert_eq!(fs::read(&cache).unwrap().len(), 48 + 32 * 1007);
}

#[test]
fn a_jwt_tampered_in_place_is_caught_though_its_old_bytes_are_remembered() {
    let p = walkthrough();
    let (_, c) = counted(&p, &["plan"]);
    assert_eq!((c.jwts, c.checked), (9, 9));
    let forged = tamper(&p, "O2/accounts/sales/users/pam.jwt", 2);
    let (run, c) = counted(&p, &["plan"]);
    assert_eq!(
        (c.checked, c.remembered),
        (1, 8),
        "the new bytes are checked"
    );
    let text = run.success().stdout;
    assert!(text.contains("sales/pam"), "{text}");
    assert!(
        text.contains("1 to re-issue") || text.contains("re-issue"),
        "{text}"
    );
    let (all, _) = counted(&p, &["plan", "--verify-all"]);
    assert_eq!(all.stdout, text, "the same plan as a full check");
    // A JWT that does not verify is never remembered.
    let remembered =
        natsform::verified::Cache::at(&p.cache_home(), &p.project_dir().canonicalize().unwrap())
            .load()
            .0;
    assert!(!remembered.contains(&natsform::verified::digest(&forged)));
    assert_eq!(remembered.len(), 8);
}

/// Someone who can write the user's cache directory lists a forged JWT's
/// bytes as verified: the plan trusts them (that is what the cache is),
/// but apply verifies again everything whose content it relies on and
/// refuses, and `plan --verify-all` shows the truth and repairs the cache.
/// Here a deleted user's forged JWT: its subject and `iat` would become
/// its account's revocation (an `iat` of 1 would leave the real JWT
/// unrevoked).
#[test]
fn a_poisoned_cache_cannot_make_apply_sign_from_a_forged_jwt() {
    let p = walkthrough();
    p.run(&["plan"]).success();
    let forged = forge(&p, "O2/accounts/sales/users/pam.jwt", |payload| {
        with_iat(payload, 1)
    });
    let cache = poison(&p);
    edit(
        &p,
        "[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:support\"]\n",
        "",
    );

    let before = p.files();
    let (run, c) = counted(&p, &["apply", "--auto-approve"]);
    assert_eq!(c.checked, 0);
    let err = run.failure().stderr;
    assert!(err.contains("pam.jwt does not verify"), "{err}");
    assert!(err.contains("verification cache"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(err.contains("plan --verify-all"), "{err}");
    assert_eq!(p.files(), before, "nothing written");

    let (full, c) = counted(&p, &["plan", "--verify-all"]);
    assert_eq!(c.checked, 9);
    assert!(full.success().stdout.contains("sales/pam"));
    assert!(!cache
        .load()
        .0
        .contains(&natsform::verified::digest(&forged)));
    p.apply();
    let (_, c) = counted(&p, &["plan"]);
    assert_eq!(
        (c.checked, c.remembered),
        (0, 8),
        "apply remembered its JWTs"
    );
}

/// A forged JWT of a user that apply only re-issues under the same key is
/// verified again too, and refused: its subject decides whether the plan
/// re-issues the user or replaces it (revoking the old key), so a forged
/// subject taken on the cache's word could keep a leaked key unrevoked.
/// Here the forgery widens the tags and keeps the subject: refused all the
/// same, nothing written.
#[test]
fn a_forged_jwt_of_a_user_apply_only_reissues_is_verified_again_and_refused() {
    let p = walkthrough();
    p.run(&["plan"]).success();
    forge(&p, "O2/accounts/sales/users/pam.jwt", |payload| {
        payload.replace("\"tags\":[\"team:support\"]", "\"tags\":[\"team:leads\"]")
    });
    poison(&p);
    let before = p.files();
    let (run, c) = counted(&p, &["apply", "--auto-approve"]);
    assert_eq!(c.checked, 0, "the plan took every JWT on the cache's word");
    let err = run.failure().stderr;
    assert!(err.contains("pam.jwt does not verify"), "{err}");
    assert_eq!(p.files(), before, "nothing written");
    let (full, c) = counted(&p, &["plan", "--verify-all"]);
    assert_eq!(c.checked, 9);
    assert!(
        full.success().stdout.contains("sales/pam"),
        "shown for re-issue"
    );
}

#[test]
fn a_cache_that_is_garbage_a_link_huge_or_others_writable_is_ignored_with_a_note() {
    let p = walkthrough();
    p.run(&["plan"]).success();
    let cache = p.verified_cache_file();
    let good = fs::read(&cache).unwrap();
    let write_private = |bytes: &[u8]| {
        let _ = fs::remove_file(&cache);
        fs::write(&cache, bytes).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o600)).unwrap();
    };

    write_private(b"garbage");
    let run = natsform_snapshot!(
        name = "garbage_cache",
        p.natsform(&["plan"]).env("NATSFORM_NOW", "1800000000")
    );
    assert!(run.stdout.contains("No changes"));
    assert_eq!(fs::read(&cache).unwrap(), good, "rewritten");

    let elsewhere = p.cache_home().join("elsewhere");
    fs::write(&elsewhere, &good).unwrap();
    fs::remove_file(&cache).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &cache).unwrap();
    let (run, c) = counted(&p, &["plan"]);
    assert_eq!(c.checked, 9);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    let meta = fs::symlink_metadata(&cache).unwrap();
    assert!(meta.is_file(), "the link was replaced by a file");
    assert_eq!(fs::read(&elsewhere).unwrap(), good, "its target untouched");

    write_private(b"");
    fs::OpenOptions::new()
        .write(true)
        .open(&cache)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let (run, c) = counted(&p, &["plan"]);
    assert_eq!(c.checked, 9);
    assert!(run.stderr.contains("more than"), "{}", run.stderr);
    assert_eq!(fs::read(&cache).unwrap(), good);

    fs::set_permissions(&cache, fs::Permissions::from_mode(0o666)).unwrap();
    let (run, c) = counted(&p, &["plan"]);
    assert_eq!(c.checked, 9);
    assert!(run.stderr.contains("written by others"), "{}", run.stderr);
}

#[test]
fn a_cache_that_cannot_be_written_never_fails_the_plan() {
    let p = walkthrough();
    // The cache home is a file: nothing can be created under it.
    fs::write(p.cache_home(), "not a directory").unwrap();
    let run = natsform_snapshot!(
        name = "unwritable_cache",
        p.natsform(&["plan"]).env("NATSFORM_NOW", "1800000000")
    );
    assert!(run.stdout.contains("No changes"));
    // --json: stdout is the document alone; the note is on stderr.
    let run = p.run(&["plan", "--json"]).success();
    serde_json::from_str::<serde_json::Value>(&run.stdout).expect("one JSON document");
    assert!(run.stderr.contains("could not remember"));
    // --quiet: not even the note.
    let run = p.run(&["plan", "-q"]).success();
    assert_eq!(run.stderr, "");
    // Nowhere to put one (no XDG_CACHE_HOME, no HOME): silently none.
    let run = p
        .natsform(&["plan"])
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME")
        .env("NATSFORM_DEBUG_VERIFY", "1")
        .run()
        .success();
    assert!(
        run.stderr.contains("9 signatures checked"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("could not"), "{}", run.stderr);
}

/// `creds` takes the store's other JWTs on the cache's word (at 100,000
/// users, checking them all was most of its time) but verifies again,
/// ignoring it, the JWT it prints and its account's and operator's: a
/// poisoned cache cannot make it hand out a forged JWT.
#[test]
fn creds_verifies_again_only_the_chain_of_the_user_it_prints() {
    let p = walkthrough();
    p.run(&["plan"]).success();
    // Another user's JWT forged and vouched for: creds of A/U goes on,
    // checking the three JWTs it relies on and nothing else.
    forge(&p, "O2/accounts/sales/users/pam.jwt", |payload| {
        payload.replace("\"tags\":[\"team:support\"]", "\"tags\":[\"team:leads\"]")
    });
    poison(&p);
    let (run, c) = counted(&p, &["creds", "A/U"]);
    assert_eq!(c.checked, 0, "the store was checked in full");
    assert_eq!(c.again, Some(3), "{c:?}");
    assert!(run
        .success()
        .stdout
        .contains("-----BEGIN NATS USER JWT-----"));
    // Its own JWT forged and vouched for: refused, nothing printed; then
    // its account's, then its operator's.
    for file in [
        "O2/accounts/A/users/U.jwt",
        "O2/accounts/A/A.jwt",
        "O2/O2.jwt",
    ] {
        let path = p.path().join("store").join(file);
        let genuine = fs::read(&path).unwrap();
        forge(&p, file, |payload| with_iat(payload, 1_600_000_000));
        poison(&p);
        let (run, _) = counted(&p, &["creds", "A/U"]);
        let run = run.failure();
        let name = file.rsplit('/').next().unwrap();
        assert!(
            run.stderr.contains(&format!("{name} does not verify")),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        fs::write(&path, genuine).unwrap();
    }
}

#[test]
fn plan_base_and_other_commands_leave_the_cache_alone() {
    let p = walkthrough();
    for args in [&["show"][..], &["creds", "A/U"], &["server-config"]] {
        let _ = p.run(args);
    }
    assert!(!p.verified_cache_file().exists());
}
