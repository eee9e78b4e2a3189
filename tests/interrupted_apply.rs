//! An apply stopped at any point — after a phase, between two renames of
//! a phase, before a phase's directory syncs — loses no key a JWT on disk
//! depends on, and the next apply converges. The stop is the testing hook
//! `NATSFORM_FAULT=<phase>:<point>`, which exits like a crash (no cleanup);
//! a SIGKILL at other moments checks the same without the hook.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use support::cli::Project;

/// The exit status of a stop the hook made (`fsutil::fault::EXIT`).
const FAULT_EXIT: i32 = 86;

/// The users of the manifest after [`change`], as `creds` names them.
const USERS: [&str; 6] = ["SYS/sys", "A/U", "A/worker", "A/new1", "sales/joe", "B/b1"];

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// The walkthrough, applied, then changed in every way a phase writes:
/// a signing key rotated (its users re-issued, its old seed an orphan), a
/// user and an account with a user created (new seeds, lock entries and
/// JWTs), a user deleted (a JWT removed, a revocation, an orphan seed).
fn changed_project() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.main]",
        "[operators.O2.accounts.A.signing_keys.main]\nkeys = [\"v2\"]",
    );
    edit(
        &p,
        "[operators.O2.accounts.A.users.worker]",
        "[operators.O2.accounts.A.users.new1]\nsigner = \"main\"\n\n[operators.O2.accounts.A.users.worker]",
    );
    edit(
        &p,
        "[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:support\"]\n",
        "[operators.O2.accounts.B.users.b1]\n",
    );
    p
}

/// A fresh copy of `base` (files, modes, the manifest's name).
fn copy_of(base: &Project) -> Project {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), dir.path());
    let manifest = dir.path().join(base.manifest.file_name().unwrap());
    Project { dir, manifest }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if kind.is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().unwrap().is_dir() {
            all_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn temp_files(p: &Project) -> Vec<PathBuf> {
    let mut files = Vec::new();
    all_files(p.path(), &mut files);
    files.retain(|f| {
        let name = f.file_name().unwrap().to_string_lossy();
        name.starts_with(".natsform-") && name.ends_with(".tmp")
    });
    files
}

/// Every public key a seed file of the vault holds, by its file name
/// (`vault/<public key>.age`): the one place to adapt if the vault's
/// layout changes.
fn sealed_keys(p: &Project) -> BTreeSet<String> {
    let mut files = Vec::new();
    all_files(&p.path().join("vault"), &mut files);
    let mut keys = BTreeSet::new();
    for f in &files {
        let Some(name) = f.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".users.age") {
            // An account's bundle of user seeds, opened with the age crate
            // and the demo identity; every seed checked against its key.
            keys.extend(bundle_keys(f));
        } else if let Some(key) = name.strip_suffix(".age") {
            keys.insert(key.to_string());
        }
    }
    keys
}

fn bundle_keys(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(support::cli::demo_identity()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let id: age::x25519::Identity = line.parse().unwrap();
    let bytes = fs::read(path).unwrap();
    let d = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut d
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    plain
        .lines()
        .skip(1)
        .map(|line| {
            let (public, seed) = line.split_once(' ').unwrap();
            assert_eq!(
                nkeys::KeyPair::from_seed(seed).unwrap().public_key(),
                public
            );
            public.to_string()
        })
        .collect()
}

/// `(path, issuer, subject)` of every JWT in the store.
fn stored_jwts(p: &Project) -> Vec<(PathBuf, String, String)> {
    let mut files = Vec::new();
    all_files(&p.path().join("store"), &mut files);
    files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jwt"))
        .map(|f| {
            let token = fs::read_to_string(&f).unwrap();
            let payload = token.split('.').nth(1).expect("a JWT");
            let json = data_encoding::BASE64URL_NOPAD
                .decode(payload.trim_end_matches('=').as_bytes())
                .expect("base64url");
            let claims: serde_json::Value = serde_json::from_slice(&json).expect("JSON claims");
            let key = |k: &str| claims[k].as_str().expect("a key").to_string();
            (f, key("iss"), key("sub"))
        })
        .collect()
}

/// What must hold at any moment, even right after a crash: every JWT on
/// disk is signed by a key whose seed is in the vault, and names as its
/// subject a key whose seed is in the vault; every key the lock binds has
/// its seed in the vault.
fn no_key_lost(p: &Project, at: &str) {
    let sealed = sealed_keys(p);
    for (path, iss, sub) in stored_jwts(p) {
        assert!(
            sealed.contains(&iss),
            "{at}: {} is signed by {iss}, whose seed is not in the vault",
            path.display()
        );
        assert!(
            sealed.contains(&sub),
            "{at}: {} names {sub}, whose seed is not in the vault",
            path.display()
        );
    }
    // Killed before the lock phase of a first apply: no lock yet.
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap_or_default();
    for line in lock.lines() {
        let Some((address, key)) = line.split_once(" = ") else {
            continue;
        };
        let key = key.trim_matches('"');
        if key.len() == 56 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            assert!(
                sealed.contains(key),
                "{at}: the lock binds {address} to {key}, whose seed is not in the vault"
            );
        }
    }
}

/// After an interrupted apply: nothing lost; the next apply succeeds, the
/// plan after it has no changes, every user's creds work, no temporary file
/// is left, and the project is what an uninterrupted apply makes of it
/// (same set of JWT files, same lock addresses).
fn converges(p: &Project, at: &str, reference: &Outcome) {
    no_key_lost(p, at);
    p.run(&["apply", "--auto-approve"]).success();
    no_key_lost(p, &format!("{at}, re-run"));
    let plan = p
        .run_without_identity(&["plan", "--detailed-exitcode"])
        .success();
    assert!(
        plan.stdout.contains("No changes"),
        "{at}: the plan after the re-run:\n{}",
        plan.stdout
    );
    let creds = p.run(&[&["creds"], &USERS[..]].concat()).success().stdout;
    assert_eq!(
        creds.matches("BEGIN NATS USER JWT").count(),
        USERS.len(),
        "{at}: {creds}"
    );
    assert_eq!(temp_files(p), Vec::<PathBuf>::new(), "{at}");
    assert_eq!(&outcome(p), reference, "{at}");
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    jwt_files: Vec<PathBuf>,
    lock_addresses: Vec<String>,
}

fn outcome(p: &Project) -> Outcome {
    let mut jwt_files: Vec<PathBuf> = stored_jwts(p)
        .into_iter()
        .map(|(f, _, _)| f.strip_prefix(p.path()).unwrap().to_path_buf())
        .collect();
    jwt_files.sort();
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    let lock_addresses = lock
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(a, _)| a.to_string()))
        .collect();
    Outcome {
        jwt_files,
        lock_addresses,
    }
}

/// Runs apply with `NATSFORM_FAULT=<fault>`; returns the stop's stderr.
fn stopped(p: &Project, fault: &str) -> String {
    let run = p
        .natsform(&["apply", "--auto-approve"])
        .env("NATSFORM_FAULT", fault)
        .run();
    assert_eq!(
        run.code, FAULT_EXIT,
        "{fault}: apply did not stop:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "NATSFORM_FAULT: stopped at {}",
            fault.split(':').next().unwrap()
        )),
        "{}",
        run.stderr
    );
    run.stderr
}

#[test]
fn an_apply_stopped_at_any_point_loses_no_key_and_the_next_apply_converges() {
    let base = changed_project();
    let reference = {
        let p = copy_of(&base);
        p.apply();
        no_key_lost(&p, "uninterrupted");
        outcome(&p)
    };
    let mut points = 0;
    for phase in ["seeds", "lock", "store", "tidy", "tidy-index"] {
        // Every step of the phase's commit: k renames or removals done.
        let mut k = 0;
        loop {
            let p = copy_of(&base);
            let fault = format!("{phase}:{k}");
            let stderr = stopped(&p, &fault);
            converges(&p, &fault, &reference);
            points += 1;
            // "stopped at store:3 of 9": the last step stops before the
            // directory syncs; a larger k would stop there too.
            let (step, total) = stderr
                .split(&format!("stopped at {phase}:"))
                .nth(1)
                .and_then(|rest| rest.split_once(" (").map(|(s, _)| s.to_string()))
                .and_then(|s| {
                    let (a, b) = s.split_once(" of ")?;
                    Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                })
                .unwrap_or_else(|| panic!("{fault}: {stderr}"));
            assert_eq!(step, k.min(total), "{fault}: {stderr}");
            if k >= total {
                break;
            }
            k += 1;
        }
        let p = copy_of(&base);
        let fault = format!("{phase}:done");
        stopped(&p, &fault);
        converges(&p, &fault, &reference);
        points += 1;
    }
    // The store phase alone writes the re-issued, new and deleted JWTs.
    assert!(points >= 12, "only {points} stop points");
}

/// The temporary files a stop leaves are what the next run sweeps, and
/// the stop inside the store phase left some (so the sweep was tested).
#[test]
fn a_stop_before_the_renames_leaves_only_temporary_files_which_the_next_run_sweeps() {
    let base = changed_project();
    let p = copy_of(&base);
    let before: Vec<_> = {
        let mut f = Vec::new();
        all_files(&p.path().join("store"), &mut f);
        f.sort();
        f.into_iter().map(|f| (fs::read(&f).unwrap(), f)).collect()
    };
    stopped(&p, "store:0");
    assert!(!temp_files(&p).is_empty(), "store:0 left no temporary file");
    let after: Vec<_> = {
        let mut f = Vec::new();
        all_files(&p.path().join("store"), &mut f);
        f.retain(|f| {
            !f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".natsform-")
        });
        f.sort();
        f.into_iter().map(|f| (fs::read(&f).unwrap(), f)).collect()
    };
    assert_eq!(before, after, "store:0 changed a JWT file");
    p.run_without_identity(&["plan"]).success();
    p.apply();
    assert!(temp_files(&p).is_empty());
}

/// SIGKILL, at moments spread over a larger apply (no hook): whatever was
/// done when the process died, nothing is lost and the next apply
/// converges. Deterministic in what it checks: every moment must pass.
#[cfg(unix)]
#[test]
fn an_apply_killed_at_any_moment_loses_no_key_and_the_next_apply_converges() {
    let mut text = String::from(
        "[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n\
         [operators.K]\nsystem_account = \"SYS\"\n\n[operators.K.accounts.SYS.users.admin]\n\n\
         [operators.K.accounts.A.signing_keys.main]\n",
    );
    for i in 0..120 {
        text.push_str(&format!(
            "\n[operators.K.accounts.A.users.u{i}]\nsigner = \"main\"\n"
        ));
    }
    let base = Project::with_manifest("natsform.toml", &text);
    killed_at_sixths(&base, "A/u119", "killed");
}

/// Applies a copy of `base` five times, each SIGKILLed at k/6 of an
/// uninterrupted apply's duration (k = 1..5); after each, nothing is lost,
/// the next apply converges to what an uninterrupted one makes (no journal
/// or temporary file left), and `user`'s creds work.
#[cfg(unix)]
fn killed_at_sixths(base: &Project, user: &str, what: &str) {
    // How long an uninterrupted apply takes, to spread the kills over it.
    let full = {
        let p = copy_of(base);
        let t = Instant::now();
        p.apply();
        t.elapsed()
    };
    let reference = {
        let p = copy_of(base);
        p.apply();
        outcome(&p)
    };
    for sixth in 1..=5 {
        let p = copy_of(base);
        let mut child = p
            .natsform(&["apply", "--auto-approve"])
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * sixth / 6);
        let _ = child.kill();
        let _ = child.wait();
        let at = format!("{what} at {sixth}/6 of {full:?}");
        no_key_lost(&p, &at);
        p.apply();
        assert!(!p.path().join(".natsform-journal").exists(), "{at}");
        no_key_lost(&p, &format!("{at}, re-run"));
        let plan = p.run_without_identity(&["plan"]).success();
        assert!(plan.stdout.contains("No changes"), "{at}: {}", plan.stdout);
        assert!(p.creds(user).contains("BEGIN NATS USER JWT"), "{at}");
        assert_eq!(temp_files(&p), Vec::<PathBuf>::new(), "{at}");
        assert_eq!(outcome(&p), reference, "{at}");
    }
}

/// The inode of each user JWT file of account A, by name.
#[cfg(unix)]
fn user_inodes(p: &Project) -> std::collections::BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    let dir = p.path().join("store/K/accounts/A/users");
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().ino())
        })
        .collect()
}

/// A rotation re-issuing more users than a journal is worth (100 > 64)
/// rewrites their files in place, behind `.natsform-journal`: the same
/// files (inodes) hold the new JWTs. Stopped anywhere in the store phase,
/// nothing is lost; while the journal is there `plan` refuses and says to
/// run apply; the next apply finishes the rewrites from the journal (and
/// says so) and ends where an uninterrupted one does.
/// Operator K, account A with `users` users of role `main`, applied, then
/// `main`'s key rotated in the manifest (every user to be re-issued).
fn rotation_project(users: usize, top: &str) -> Project {
    let mut text = format!(
        "{top}[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n\
         [operators.K]\nsystem_account = \"SYS\"\n\n[operators.K.accounts.SYS.users.admin]\n\n\
         [operators.K.accounts.A.signing_keys.main]\n",
    );
    for i in 0..users {
        text.push_str(&format!(
            "\n[operators.K.accounts.A.users.u{i}]\nsigner = \"main\"\n"
        ));
    }
    let base = Project::with_manifest("natsform.toml", &text);
    base.apply();
    edit(
        &base,
        "[operators.K.accounts.A.signing_keys.main]\n",
        "[operators.K.accounts.A.signing_keys.main]\nkeys = [\"v2\"]\n",
    );
    base
}

#[cfg(unix)]
#[test]
fn a_large_rotation_rewrites_in_place_and_a_stop_is_finished_from_the_journal() {
    let base = rotation_project(100, "");
    let journal = |p: &Project| p.path().join(".natsform-journal");
    let reference = {
        let p = copy_of(&base);
        let before = user_inodes(&p);
        p.apply();
        assert_eq!(
            user_inodes(&p),
            before,
            "the users' files were replaced, not rewritten"
        );
        assert!(!journal(&p).exists());
        outcome(&p)
    };
    for point in ["0", "1", "57", "100", "1000", "done"] {
        let p = copy_of(&base);
        let fault = format!("store:{point}");
        stopped(&p, &fault);
        no_key_lost(&p, &fault);
        if point == "done" {
            assert!(
                !journal(&p).exists(),
                "{fault}: the journal outlived the phase"
            );
        } else {
            assert!(journal(&p).exists(), "{fault}: no journal");
            let plan = p.run_without_identity(&["plan"]);
            assert_ne!(plan.code, 0, "{fault}: plan read a half-rewritten store");
            assert!(
                plan.stderr
                    .contains("an apply was interrupted while it rewrote files of the store")
                    && plan.stderr.contains("run `natsform apply`"),
                "{fault}: {}",
                plan.stderr
            );
            // Every reader of the store, not only plan.
            for args in [&["show"][..], &["creds", "A/u1"]] {
                let run = p.run(args);
                assert!(
                    run.code != 0 && run.stderr.contains("an apply was interrupted"),
                    "{fault}: {args:?}: {}",
                    run.stderr
                );
            }
        }
        let again = p.run(&["apply", "--auto-approve"]).success();
        if point != "done" {
            assert!(
                again.stderr.contains("were finished from its journal"),
                "{fault}: {}",
                again.stderr
            );
        }
        assert!(!journal(&p).exists(), "{fault}");
        no_key_lost(&p, &format!("{fault}, re-run"));
        let plan = p.run_without_identity(&["plan"]).success();
        assert!(
            plan.stdout.contains("No changes"),
            "{fault}: {}",
            plan.stdout
        );
        assert!(p.creds("A/u99").contains("BEGIN NATS USER JWT"), "{fault}");
        assert_eq!(temp_files(&p), Vec::<PathBuf>::new(), "{fault}");
        assert_eq!(outcome(&p), reference, "{fault}");
    }
}

/// Where a file cannot or must not be rewritten in place, a large rotation
/// still completes: with few file descriptors (300 files rewritten, at most
/// 64 descriptors: none is kept open until the sync), a JWT file made
/// read-only (replaced by a rename, as before the journal), one made
/// world-writable (rewritten with the store's mode, 0600).
#[cfg(unix)]
#[test]
fn a_large_rotation_completes_with_few_descriptors_and_files_it_cannot_write_in_place() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let p = rotation_project(300, "");
    let users = p.path().join("store/K/accounts/A/users");
    fs::set_permissions(users.join("u7.jwt"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(users.join("u8.jwt"), fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = p.natsform(&["apply", "--auto-approve"]).command();
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.path().join(".natsform-journal").exists());
    let plan = p.run_without_identity(&["plan"]).success();
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    let mode = |n: &str| fs::metadata(users.join(n)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("u8.jwt"), 0o600);
    assert_eq!(
        mode("u7.jwt"),
        0o600,
        "replaced by a file of the store's mode"
    );
    assert!(p.creds("A/u7").contains("BEGIN NATS USER JWT"));
    no_key_lost(&p, "few descriptors");
}

/// A store directory the journal cannot name (hidden: `.jwts`) is written
/// as before the journal, by temporary files and renames.
#[test]
fn a_large_rotation_in_a_store_the_journal_cannot_name_is_written_by_renames() {
    let p = rotation_project(100, "store = \".jwts\"\n\n");
    p.run(&["apply", "--auto-approve"]).success();
    assert!(!p.path().join(".natsform-journal").exists());
    let plan = p.run_without_identity(&["plan"]).success();
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    assert!(p.creds("A/u99").contains("BEGIN NATS USER JWT"));
}

/// SIGKILL at moments spread over a large rotation (150 users re-issued in
/// place behind the journal, no hook: the rewrites run in parallel): nothing
/// is lost, and the next apply finishes or redoes the work and converges.
#[cfg(unix)]
#[test]
fn a_large_rotation_killed_at_any_moment_loses_no_key_and_the_next_apply_converges() {
    killed_at_sixths(&rotation_project(150, ""), "A/u149", "rotation killed");
}
