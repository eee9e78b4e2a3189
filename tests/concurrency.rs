//! One natsform run at a time per project (the run lock) and no leftovers
//! from interrupted runs (temporary files, some holding seeds).
//!
//! The lock is `flock(2)` on `.natsform.run-lock` next to the manifest: the
//! tests take it from this process with std's `File::lock`, exactly as the
//! binary does, for deterministic timing; racing pairs of applies give the
//! end-to-end proof.

mod support;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use support::cli::{find_seeds, Project, Run};

const LOCK_FILE: &str = ".natsform.run-lock";

/// Takes the project's run lock from the test process.
fn hold(p: &Project, exclusive: bool) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p.path().join(LOCK_FILE))
        .unwrap();
    if exclusive {
        f.lock().unwrap();
    } else {
        f.lock_shared().unwrap();
    }
    f
}

/// Starts natsform on `p` in the background (same environment as `Project::run`).
fn spawn(p: &Project, args: &[&str]) -> Child {
    p.natsform(args).spawn()
}

fn finish(child: Child) -> Run {
    Run::from_child(child)
}

/// Every file under `dir` (recursively), relative.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn is_temp(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.starts_with(".natsform-") && name.ends_with(".tmp")
}

/// The lock's public keys.
fn lock_keys(p: &Project) -> BTreeSet<String> {
    let text = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    let lock: toml::Table = toml::from_str(&text).unwrap();
    lock["keys"]
        .as_table()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Public keys with a seed in the vault: a seed file of its own, or a
/// line of an account's bundle of user seeds (opened with the age crate and
/// the demo identity, each seed checked against its key).
fn vault_keys(p: &Project) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for name in fs::read_dir(p.path().join("vault"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
    {
        if name.ends_with(".users.age") {
            let text = fs::read_to_string(support::cli::demo_identity()).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("AGE-SECRET-KEY-"))
                .unwrap();
            let id: age::x25519::Identity = line.parse().unwrap();
            let bytes = fs::read(p.path().join("vault").join(&name)).unwrap();
            let d =
                age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
            let mut plain = String::new();
            std::io::Read::read_to_string(
                &mut d
                    .decrypt(std::iter::once(&id as &dyn age::Identity))
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
                keys.insert(public.to_string());
            }
        } else if let Some(key) = name.strip_suffix(".age") {
            keys.insert(key.to_string());
        }
    }
    keys
}

/// A converged project: plan is empty; every JWT is signed by and issued to
/// keys the lock names; every lock key's seed is in the vault; no temporary
/// files and no lock file are left. With `no_orphans`, the vault holds no
/// seed the lock does not name (what a single apply leaves).
fn assert_converged(p: &Project, no_orphans: bool) {
    let plan = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 0,
        "plan is not empty:\n{}{}",
        plan.stdout, plan.stderr
    );
    let lock = lock_keys(p);
    let vault = vault_keys(p);
    let mut jwts = 0;
    for file in all_files(&p.path().join("store")) {
        if file.extension().is_some_and(|e| e == "jwt") {
            let claims = support::nats::jwt_claims(
                &fs::read_to_string(p.path().join("store").join(&file)).unwrap(),
            );
            for field in ["iss", "sub"] {
                let key = claims[field].as_str().unwrap();
                assert!(
                    lock.contains(key),
                    "{}: {field} {key} is not in the lock",
                    file.display()
                );
            }
            jwts += 1;
        }
    }
    assert!(jwts > 0);
    let missing: Vec<_> = lock.difference(&vault).collect();
    assert!(missing.is_empty(), "lock keys without a seed: {missing:?}");
    if no_orphans {
        let orphans: Vec<_> = vault.difference(&lock).collect();
        assert!(orphans.is_empty(), "{} orphaned seeds", orphans.len());
    }
    let left: Vec<_> = all_files(p.path())
        .into_iter()
        .filter(|f| is_temp(f) || f.ends_with(LOCK_FILE))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// --- the lock, held from the test ------------------------------------------

#[test]
fn apply_fails_at_once_while_another_apply_holds_the_lock_and_changes_nothing() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let held = hold(&p, true);
    let before = p.files();
    let start = Instant::now();
    let run = natsform_snapshot!(p, ["apply", "--auto-approve"], @r"
    success: false
    exit_code: 1
    ----- stdout -----
    ----- stderr -----
    error: another natsform apply holds the lock on [PROJECT] (pid [PID]); nothing was changed
      = help: retry when it has finished, or pass --lock-timeout 30s to wait for it
    ");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(p.files(), before, "nothing may change");
    assert!(
        run.stderr
            .contains(&format!("(pid {})", std::process::id())),
        "the holder's pid: {}",
        run.stderr
    );
    drop(held);
    p.apply();
    assert_converged(&p, true);
}

#[test]
fn a_saved_plan_waits_its_turn_like_apply() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let plan_file = p.path().join("plan.json");
    let plan_file = plan_file.to_str().unwrap();
    p.run(&["plan", "--out", plan_file]).success();
    let held = hold(&p, true);
    let before = p.files();
    let run = p.run(&["apply", plan_file]).failure();
    assert!(
        run.stderr
            .contains("another natsform apply holds the lock on"),
        "{}",
        run.stderr
    );
    assert_eq!(p.files(), before);
    let child = spawn(&p, &["apply", plan_file, "--lock-timeout", "1m"]);
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let run = finish(child).success();
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    assert_converged(&p, true);
}

#[test]
fn plan_show_and_creds_refuse_to_read_a_half_written_apply() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let held = hold(&p, true);
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["show"],
        &["creds", "A/U"],
    ] {
        let run = p.run(args).failure();
        if args.contains(&"--json") {
            // A JSON error document on stdout (issue 12), the text on stderr.
            let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            let message = doc["error"]["message"].as_str().unwrap();
            assert!(message.starts_with("another natsform apply holds the lock"));
        } else {
            assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        }
        assert_eq!(
            p.filter(&run.stderr),
            "error: another natsform apply holds the lock on [PROJECT] (pid [PID]) and its changes are not complete\n  \
             = help: retry when it has finished, or pass --lock-timeout 30s to wait for it\n",
            "{args:?}"
        );
    }
    drop(held);
    p.run(&["plan"]).success();
    assert!(p.creds("A/U").contains("NATS USER JWT"));
}

#[test]
fn readers_share_the_lock_and_keep_apply_out() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let held = hold(&p, false);
    // Plans run beside a reader…
    let plan = p.run_without_identity(&["plan"]).success();
    assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
    // …an apply does not.
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert_eq!(p.files(), before);
    assert_eq!(
        p.filter(&run.stderr),
        "error: a natsform plan, show or creds is reading [PROJECT] (pid [PID]); nothing was changed\n  \
         = help: retry when it has finished, or pass --lock-timeout 30s to wait for it\n"
    );
    // creds --out writes seeds and sweeps: it wants the lock alone, too.
    let out = p.path().join("creds-out");
    let run = p.run(&["creds", "--out", out.to_str().unwrap()]).failure();
    assert!(run.stderr.contains("is reading"), "{}", run.stderr);
    assert!(!out.exists());
    drop(held);
}

#[test]
fn lock_timeout_waits_for_the_holder_then_applies() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let held = hold(&p, true);
    let mut child = spawn(&p, &["apply", "--auto-approve", "--lock-timeout", "1m"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "apply did not wait");
    assert!(
        !p.path().join("natsform.lock").exists(),
        "apply wrote while waiting"
    );
    drop(held);
    let run = finish(child).success();
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    assert!(
        p.filter(&run.stderr).contains(
            "Waiting up to 1m for the lock on [PROJECT] (another natsform apply is running)…"
        ),
        "{}",
        run.stderr
    );
    assert_converged(&p, true);
}

#[test]
fn lock_timeout_gives_up_with_a_clear_message() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let _held = hold(&p, true);
    let before = p.files();
    let start = Instant::now();
    natsform_snapshot!(p, ["plan", "--lock-timeout", "1s"], @r"
    success: false
    exit_code: 1
    ----- stdout -----
    ----- stderr -----
    Waiting up to 1s for the lock on [PROJECT] (another natsform apply is running)…
    error: another natsform apply holds the lock on [PROJECT] (pid [PID]) after waiting 1s and its changes are not complete
      = help: retry when it has finished, or wait longer with a larger --lock-timeout
    ");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert_eq!(p.files(), before);
    // The environment sets it too (for pipelines); a bad value is refused.
    let run = p
        .run_env(
            &["apply", "--auto-approve"],
            &[("NATSFORM_LOCK_TIMEOUT", "1s")],
        )
        .failure();
    assert!(run.stderr.contains("after waiting 1s"), "{}", run.stderr);
    let run = p.run(&["plan", "--lock-timeout", "soon"]).failure();
    assert!(run.stderr.contains("is not a duration"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn a_planted_lock_file_symlink_is_refused_and_its_target_untouched() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("victim");
    fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, p.path().join(LOCK_FILE)).unwrap();
    for args in [&["apply", "--auto-approve"][..], &["plan"]] {
        let run = p.run(args).failure();
        assert!(
            run.stderr
                .contains("it is a symbolic link, and natsform never follows one"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    assert!(!p.path().join("natsform.lock").exists());
    // A dangling link is not followed to create its target either.
    let created = outside.path().join("created");
    fs::remove_file(p.path().join(LOCK_FILE)).unwrap();
    std::os::unix::fs::symlink(&created, p.path().join(LOCK_FILE)).unwrap();
    p.run(&["apply", "--auto-approve"]).failure();
    assert!(!created.exists());
}

// --- racing applies ----------------------------------------------------------

/// Two applies started at once: exactly one applies; the other either fails
/// at once (nothing changed) or, when it started after the first finished,
/// finds nothing to do. Either way the project converges with no orphans.
#[test]
fn racing_applies_never_both_write() {
    let mut overlapped = 0;
    for round in 0..6 {
        let p = Project::generated(160);
        let a = spawn(&p, &["apply", "--auto-approve"]);
        let b = spawn(&p, &["apply", "--auto-approve"]);
        let runs = [finish(a), finish(b)];
        let applied = runs
            .iter()
            .filter(|r| r.code == 0 && r.stdout.contains("Apply complete"))
            .count();
        assert_eq!(applied, 1, "round {round}: {runs:#?}");
        for r in &runs {
            assert_eq!(
                find_seeds(format!("{}{}", r.stdout, r.stderr).as_bytes()),
                Vec::<String>::new()
            );
            if r.code != 0 {
                overlapped += 1;
                assert!(
                    r.stderr
                        .contains("another natsform apply holds the lock on")
                        && r.stderr.contains("nothing was changed"),
                    "round {round}: {}",
                    r.stderr
                );
                assert!(
                    r.stdout.is_empty(),
                    "the loser printed a plan: {}",
                    r.stdout
                );
            } else if !r.stdout.contains("Apply complete") {
                assert!(
                    r.stdout.contains("No changes."),
                    "round {round}: {}",
                    r.stdout
                );
            }
        }
        assert_converged(&p, true);
    }
    assert!(
        overlapped > 0,
        "no round overlapped: the race was not exercised"
    );
}

/// With --lock-timeout both succeed: one applies, the other waits and then
/// finds nothing to do (it plans after the first apply's last write).
#[test]
fn racing_applies_with_a_timeout_take_turns() {
    for round in 0..3 {
        let p = Project::generated(160);
        let args = ["apply", "--auto-approve", "--lock-timeout", "5m"];
        let a = spawn(&p, &args);
        let b = spawn(&p, &args);
        let runs = [finish(a).success(), finish(b).success()];
        let applied = runs
            .iter()
            .filter(|r| r.stdout.contains("Apply complete"))
            .count();
        let unchanged = runs
            .iter()
            .filter(|r| r.stdout.contains("No changes."))
            .count();
        assert_eq!((applied, unchanged), (1, 1), "round {round}: {runs:#?}");
        assert_converged(&p, true);
    }
}

/// A plan racing an apply sees either the store before it or after it,
/// never half of it: with --lock-timeout it waits and sees the result.
#[test]
fn a_plan_racing_an_apply_waits_for_it() {
    let p = Project::generated(160);
    // The apply may wait a moment for the probe below, never fail on it.
    let apply = spawn(&p, &["apply", "--auto-approve", "--lock-timeout", "5m"]);
    // Wait until the apply holds the lock — not only until its file
    // appears: a plan started in between would take the lock first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let held = File::open(p.path().join(LOCK_FILE))
            .is_ok_and(|f| matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock)));
        if held {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let plan = p.run_without_identity(&["plan", "--detailed-exitcode", "--lock-timeout", "5m"]);
    let apply = finish(apply).success();
    assert!(apply.stdout.contains("Apply complete"), "{}", apply.stdout);
    assert_eq!(
        plan.code, 0,
        "the plan saw a partial apply:\n{}{}",
        plan.stdout, plan.stderr
    );
    assert_converged(&p, true);
}

// --- leftovers ---------------------------------------------------------------

/// What a temporary file of an interrupted write may hold: a seed-shaped
/// line (made here, so no seed-shaped text is committed).
fn seedlike() -> String {
    format!("SU{}\n", "A".repeat(56))
}

/// Plants temporary files (as an interrupted write leaves them) and
/// look-alikes that are not ours under `dir`.
fn plant(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    fs::create_dir_all(dir).unwrap();
    let ours = vec![
        dir.join(".natsform-Ab12Cd.tmp"),
        dir.join(".natsform-XXXX.tmp"),
    ];
    let theirs = vec![
        dir.join("notes.tmp"),
        dir.join(".natsform-foo"),
        dir.join(".natsform-a.b.tmp"),
    ];
    for f in ours.iter().chain(&theirs) {
        fs::write(f, seedlike()).unwrap();
    }
    (ours, theirs)
}

#[test]
fn a_completed_apply_removes_temporary_files_an_interrupted_one_left() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let dirs = [
        p.path().to_path_buf(),
        p.path().join("vault"),
        p.path().join("store"),
        p.path().join("store/O2"),
        p.path().join("store/O2/accounts/A"),
        p.path().join("store/O2/accounts/A/users"),
    ];
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for d in &dirs {
        let (o, t) = plant(d);
        ours.extend(o);
        theirs.extend(t);
    }
    // A plan only reads: it leaves them.
    p.run_without_identity(&["plan"]).success();
    assert!(ours.iter().all(|f| f.exists()));
    // A completed apply with nothing to do removes them, and says so.
    let run = p.apply();
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    for f in &ours {
        assert!(!f.exists(), "{} survived", f.display());
        assert!(
            run.stderr.contains(&format!(
                "Removed {}, a temporary file left by an interrupted run.",
                f.display()
            )),
            "{}",
            run.stderr
        );
    }
    for f in &theirs {
        assert_eq!(
            fs::read_to_string(f).unwrap(),
            seedlike(),
            "{}",
            f.display()
        );
    }
    // So does one that changes something (new account directory included).
    let (ours, theirs) = plant(&p.path().join("vault"));
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(
        &p.manifest,
        format!("{text}\n[operators.O2.accounts.A.users.extra]\n"),
    )
    .unwrap();
    let run = p.apply();
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    assert!(ours.iter().all(|f| !f.exists()));
    assert!(theirs.iter().all(|f| f.exists()));
}

#[test]
fn a_failed_apply_leaves_the_project_as_it_was() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let (ours, _) = plant(&p.path().join("vault"));
    // Deleting the system account needs --allow-destroy: refused, nothing changes.
    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(
        &p.manifest,
        text.replace("system_account = \"SYS\"", "system_account = \"A\"")
            .replace("[operators.O2.accounts.SYS.users.sys]\n", ""),
    )
    .unwrap();
    let before = p.files();
    p.run(&["apply", "--auto-approve"]).failure();
    assert_eq!(p.files(), before);
    assert!(ours.iter().all(|f| f.exists()));
}

#[test]
fn a_completed_creds_out_removes_temporary_creds_an_interrupted_one_left() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let out = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // Where creds --out writes: DIR, DIR/<operator>, DIR/<operator>/<account>
    // (sales is not asked for this time: its leftovers go too).
    for d in ["", "O2", "O2/A", "O2/sales"] {
        let (o, t) = plant(&out.path().join(d));
        ours.extend(o);
        theirs.extend(t);
    }
    // Not where natsform writes: left alone.
    let (deeper, _) = plant(&out.path().join("O2/A/backup"));
    let run = p
        .run(&["creds", "--out", out.path().to_str().unwrap(), "A/U"])
        .success();
    for f in &ours {
        assert!(!f.exists(), "{} survived", f.display());
    }
    for f in theirs.iter().chain(&deeper) {
        assert!(f.exists(), "{} was removed", f.display());
    }
    assert!(out.path().join("O2/A/U.creds").exists());
    assert_eq!(find_seeds(run.stderr.as_bytes()), Vec::<String>::new());
    // Printing creds writes nothing and sweeps nothing.
    let (ours, _) = plant(&out.path().join("O2/A"));
    p.creds("A/U");
    assert!(ours.iter().all(|f| f.exists()));
}

/// A real interruption: kill -9 an apply midway; the next apply gets the
/// lock (the OS released it), converges and leaves nothing behind.
#[cfg(unix)]
#[test]
fn an_apply_killed_midway_is_finished_by_the_next() {
    let mut kills = 0;
    for wait_for_seeds in [10, 120] {
        let p = Project::generated(250);
        // -q: no plan on stdout, which nobody reads here.
        let mut child = spawn(&p, &["apply", "--auto-approve", "-q"]);
        let vault = p.path().join("vault");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seeds = fs::read_dir(&vault).map(|d| d.count()).unwrap_or(0);
            if seeds >= wait_for_seeds || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "apply made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let killed = !status.success();
        // Whatever it left, the next apply finishes the job without waiting.
        let run = p.apply();
        if killed {
            kills += 1;
            assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
        }
        // Seeds written before the kill without a lock entry may remain as
        // orphans (never lost keys): no orphan check here.
        assert_converged(&p, false);
    }
    assert!(kills > 0, "no apply was killed midway");
}
