//! Benchmark: `natsform apply` at scale, each figure against baselines
//! measured in the same run.
//!
//!     cargo bench --bench apply
//!     NATSFORM_BENCH_ACCOUNTS=100 NATSFORM_BENCH_BIG=2000 cargo bench --bench apply   # smaller
//!
//! (`NATSFORM_BENCH_USERS`: users per account, default 100;
//! `NATSFORM_BENCH_ROUNDS`: each baseline is the median of this many runs, default 3.)
//!
//! Scenarios, each one run of the real binary (`natsform`, built by cargo
//! for this benchmark) in its own process, so its peak memory (ru_maxrss
//! from wait4) is its own:
//!
//! 1. apply from empty: ACCOUNTS × USERS users (default 1,000 × 100, the
//!    generated trust tree of `benches/plan.rs`, from `common/`), then
//!    `plan` with no changes on the result;
//! 2. one account of BIG users (default 10,000; applied from empty first,
//!    which is measured too): rename every role's key label, so every role
//!    key is rotated and all BIG users are re-issued: `plan`, then `apply`;
//! 3. the same account: delete one user: `plan`, then `apply`.
//!
//! Scenario 1 runs first, on a file system that has not just freed the
//! inodes of scenarios 2 and 3 (see `main`); for the same reason, leave a
//! few minutes between two runs of this benchmark (each removes its
//! ~120,000 files at the end).
//!
//! After each apply, `plan --detailed-exitcode` must say "no changes" (not
//! timed). Nothing here reads the vault: what apply wrote is checked through
//! the binary's behaviour and the store (nsc layout).
//!
//! Baselines, same run, for the same number of user JWTs: natsform's own
//! encode + sign (`apply::sign` of the same users' desired claims, each
//! signed by its role's key, on 1 thread and on all of rayon's), natsform's
//! signature check (Ed25519 verify of the JWTs apply wrote, 1 thread and
//! all), and, when `go` and Debian's nats-io/jwt v2 sources are installed
//! (`apt-get install golang-go golang-github-nats-io-jwt-dev`), bare Go
//! loops of the official library: encode + sign, and decode + verify of the
//! JWTs apply wrote (`benches/go/jwtloop`). Without them the Go columns say
//! why and the rest runs.
//!
//! And the file system's share of scenario 1, once, right after it: files
//! of the names and sizes that apply from empty wrote (vault, then store)
//! written into a fresh tree with the barriers of apply's batches
//! (temporary files, `syncfs`, renames, `syncfs`; directories in
//! parallel), with no key, JWT or age work: what any tool that keeps one
//! file per JWT pays there.
//!
//! The seeds are sealed to an age identity generated for this run (passed
//! to natsform in its environment, never written); HOME and the XDG
//! directories of every natsform process point into the run's temporary
//! directory. Figures are wall-clock on a shared machine: compare the
//! ratios, not the seconds.

#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use age::secrecy::ExposeSecret;
use rayon::prelude::*;

use natsform::keys::{self, KeyPair};
use natsform::plan::{self, DesiredObject};
use natsform::store::Store;
use natsform::tree::ObjectKind;
use natsform::workspace::Workspace;

use common::{env_usize, signature_inputs, verify_1, verify_n, Shape, ROLES};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GOPATH: &str = "/usr/share/gocode";
const GO_INSTALL: &str = "apt-get install golang-go golang-github-nats-io-jwt-dev";

/// The `iat` of the baseline's JWTs (any fixed time: signing cost does not depend on it).
const IAT: i64 = 1_800_000_000;

/// One finished natsform process.
struct Run {
    secs: f64,
    peak_mib: f64,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The plan's summary line (`Plan: …`), or "" when there is none.
    fn summary(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("Plan: "))
            .unwrap_or_default()
    }

    /// The last line printed (apply's result, or "No changes. …").
    fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
    }
}

/// Runs natsform in its own process; wall time from spawn to exit, peak
/// memory from the kernel's accounting of that process alone.
fn natsform(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsform"));
    cmd.arg("-f")
        .arg(dir.join("natsform.toml"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "NATSFORM_AGE_KEY",
        "NATSFORM_AGE_IDENTITY",
        "NATSFORM_MANIFEST",
        "NATSFORM_LOCK_TIMEOUT",
        "NATSFORM_NOW",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY",
    ] {
        cmd.env_remove(var);
    }
    let home = &env.home;
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("NO_COLOR", "1")
        .env("NATSFORM_AGE_KEY", env.identity.expose_secret());
    let start = Instant::now();
    // Reaped below by wait4 (for the child's own rusage), not by std.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("starting natsform");
    let pid = child.id() as libc::pid_t;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 reaps the child itself (std's Child is then never waited on,
    // which is fine: dropping a Child does not wait) and reports its own
    // peak resident set, in KiB on Linux.
    let reaped = loop {
        // SAFETY: pid is our child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Run {
        secs,
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs natsform and insists on exit code 0 (or `want`).
fn natsform_ok(env: &Env, dir: &Path, args: &[&str], want: i32) -> Run {
    let run = natsform(env, dir, args);
    assert_eq!(
        run.code,
        want,
        "natsform {} exited with {}:\n{}\n{}",
        args.join(" "),
        run.code,
        run.stderr,
        tail(&run.stdout, 20)
    );
    run
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The environment of every natsform process.
struct Env {
    home: PathBuf,
    identity: age::secrecy::SecretString,
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--no-push"];
const PLAN: &[&str] = &["plan"];
const PLAN_CHECK: &[&str] = &["plan", "--detailed-exitcode"];

/// The project directory `dir` gets this manifest.
fn write_manifest(dir: &Path, shape: &Shape) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("natsform.toml"), shape.manifest()).unwrap();
}

/// After an apply: plan must show no changes.
fn assert_converged(env: &Env, dir: &Path) {
    natsform_ok(env, dir, PLAN_CHECK, 0);
}

/// The user JWTs of the generated accounts (not the system account's), as stored.
fn user_tokens(dir: &Path) -> Vec<String> {
    Store::new(dir.join("store"))
        .read()
        .unwrap()
        .jwts
        .into_iter()
        .filter(|(id, _)| id.kind() == ObjectKind::User && id.account.as_deref() != Some("SYS"))
        .map(|(_, j)| j.token)
        .collect()
}

/// What signing those users costs natsform: the same manifest's users,
/// their desired claims built by the library as apply builds them, each
/// signed by its role's key with `apply::sign` (claims encode + sign). The
/// keys are generated here, of the same kinds and in the same places as
/// apply's (Ed25519 costs the same with any key): a fresh directory holding
/// only the manifest, so nothing of the applied project is read.
struct SignInputs {
    /// Each user's desired object and the index of its signer in `keys`.
    users: Vec<(DesiredObject, usize)>,
    keys: Vec<KeyPair>,
}

fn sign_inputs(dir: &Path, shape: &Shape) -> SignInputs {
    write_manifest(dir, shape);
    let ws = Workspace::open(&dir.join("natsform.toml")).unwrap();
    let keys: Vec<(String, KeyPair)> = plan::required_keys(&ws.loaded.manifest)
        .into_par_iter()
        .map(|(addr, (kind, _))| (addr, keys::generate(kind)))
        .collect();
    let book: plan::KeyBook = keys
        .iter()
        .map(|(a, k)| (a.clone(), k.public_key()))
        .collect();
    let index: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (_, k))| (k.public_key(), i))
        .collect();
    let users = ws
        .desired(&book)
        .objects
        .into_iter()
        .filter(|(id, _)| id.kind() == ObjectKind::User && id.account.as_deref() != Some("SYS"))
        .map(|(_, d)| {
            let signer = index[d.signer.public.as_ref().unwrap()];
            (d, signer)
        })
        .collect();
    SignInputs {
        users,
        keys: keys.into_iter().map(|(_, k)| k).collect(),
    }
}

fn sign_all_1(inputs: &SignInputs) -> f64 {
    let t = Instant::now();
    for (d, signer) in &inputs.users {
        let token = natsform::apply::sign(d, IAT, &[], &inputs.keys[*signer]).unwrap();
        std::hint::black_box(token);
    }
    t.elapsed().as_secs_f64()
}

fn sign_all_n(inputs: &SignInputs) -> f64 {
    let t = Instant::now();
    inputs.users.par_iter().for_each(|(d, signer)| {
        let token = natsform::apply::sign(d, IAT, &[], &inputs.keys[*signer]).unwrap();
        std::hint::black_box(token);
    });
    t.elapsed().as_secs_f64()
}

/// The Go loops, or why there are none.
enum Go {
    Built(PathBuf),
    Missing(String),
}

fn build_go() -> Go {
    if !Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Go::Missing(format!(
            "no Go comparison: `go` is not installed (`{GO_INSTALL}`)"
        ));
    }
    if !Path::new(GOPATH)
        .join("src/github.com/nats-io/jwt/v2/claims.go")
        .exists()
    {
        return Go::Missing(format!(
            "no Go comparison: the nats-io/jwt v2 sources are not in {GOPATH} (`{GO_INSTALL}`)"
        ));
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jwtloop");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join("jwtloop");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/go/jwtloop");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .current_dir(&src)
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOCACHE", out_dir.join("gocache"))
        .env("GOFLAGS", "")
        .output();
    match out {
        Ok(o) if o.status.success() => Go::Built(bin),
        Ok(o) => Go::Missing(format!(
            "no Go comparison: go build of benches/go/jwtloop failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Go::Missing(format!("no Go comparison: running go build: {e}")),
    }
}

/// Runs the Go loop; its own timing of the loop, in seconds.
fn go_loop(bin: &Path, args: &[&str], stdin: Option<&[String]>) -> f64 {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting jwtloop");
    if let Some(tokens) = stdin {
        let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
        for t in tokens {
            writeln!(w, "{t}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "jwtloop {args:?} failed");
    let line = String::from_utf8(out.stdout).unwrap();
    let mut f = line.split_whitespace();
    let secs: f64 = f.next().unwrap().parse().unwrap();
    let count: usize = f.next().unwrap().parse().unwrap();
    if let Some(tokens) = stdin {
        assert_eq!(count, tokens.len());
    }
    secs
}

/// Same-run baselines for `n` user JWTs.
struct Baseline {
    n: usize,
    sign_1: f64,
    sign_n: f64,
    verify_1: f64,
    verify_n: f64,
    go_sign: Option<f64>,
    go_verify: Option<f64>,
}

/// The median of `rounds` timings (a baseline is cheap next to an apply:
/// repeating it keeps one noisy moment of a shared machine out of every ratio).
fn median(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut t: Vec<f64> = (0..rounds.max(1)).map(|_| f()).collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn baseline(scratch: &Path, shape: &Shape, tokens: &[String], go: &Go, rounds: usize) -> Baseline {
    let inputs = sign_inputs(scratch, shape);
    assert_eq!(inputs.users.len(), tokens.len());
    let sign_1 = median(rounds, || sign_all_1(&inputs));
    let sign_n = median(rounds, || sign_all_n(&inputs));
    drop(inputs);
    let sigs = signature_inputs(tokens);
    let verify_1 = median(rounds, || verify_1(&sigs));
    let verify_n = median(rounds, || verify_n(&sigs));
    drop(sigs);
    let (go_sign, go_verify) = match go {
        Go::Built(bin) => {
            let n = tokens.len().to_string();
            let roles = ROLES.to_string();
            (
                Some(median(rounds, || go_loop(bin, &["sign", &n, &roles], None))),
                Some(median(rounds, || go_loop(bin, &["verify"], Some(tokens)))),
            )
        }
        Go::Missing(_) => (None, None),
    };
    Baseline {
        n: tokens.len(),
        sign_1,
        sign_n,
        verify_1,
        verify_n,
        go_sign,
        go_verify,
    }
}

/// Files by directory: a directory relative to the project, and the name
/// and size of each regular file in it (only sizes: what the file system
/// does with a file does not depend on its bytes).
type Tree = Vec<(PathBuf, Vec<(String, usize)>)>;

/// Every regular file under `dir`/`top`, grouped by directory (sorted).
fn written_files(dir: &Path, top: &str) -> Tree {
    fn walk(base: &Path, rel: &Path, out: &mut Tree) {
        let mut files = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(base.join(rel))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                walk(base, &rel.join(&name), out);
            } else if meta.is_file() {
                files.push((name, meta.len() as usize));
            }
        }
        out.push((rel.to_path_buf(), files));
    }
    let mut out = Vec::new();
    walk(dir, Path::new(top), &mut out);
    out
}

fn syncfs(dir: &Path) {
    use std::os::unix::io::AsRawFd;
    let root = std::fs::File::open(dir).unwrap();
    // SAFETY: a valid descriptor, open for the call.
    assert_eq!(unsafe { libc::syncfs(root.as_raw_fd()) }, 0);
}

/// Seconds to write `phases` (the vault's files, then the store's) under
/// `to` with the barriers apply's batches use for new files, phase by
/// phase: directories created; each file created exclusively under a
/// temporary name, written, closed (directories in parallel, rayon); one
/// `syncfs`; every rename; one `syncfs` for the directories.
fn fs_floor(phases: &[Tree], to: &Path) -> f64 {
    use std::io::Write as _;
    let start = Instant::now();
    for files in phases {
        for (dir, _) in files {
            std::fs::create_dir_all(to.join(dir)).unwrap();
        }
        files.par_iter().for_each(|(dir, names)| {
            let dir = to.join(dir);
            let bytes = vec![b'e'; names.iter().map(|(_, n)| *n).max().unwrap_or(0)];
            for (name, len) in names {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(format!(".{name}.tmp")))
                    .unwrap();
                f.write_all(&bytes[..*len]).unwrap();
            }
        });
        syncfs(to);
        files.par_iter().for_each(|(dir, names)| {
            let dir = to.join(dir);
            for (name, _) in names {
                std::fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name)).unwrap();
            }
        });
        syncfs(to);
    }
    start.elapsed().as_secs_f64()
}

/// One row of the result table.
struct Row {
    what: String,
    secs: f64,
    peak_mib: Option<f64>,
    base: usize,
    note: String,
}

fn row(what: impl Into<String>, runs: &[&Run], base: usize) -> Row {
    Row {
        what: what.into(),
        secs: runs.iter().map(|r| r.secs).sum(),
        peak_mib: runs.iter().map(|r| r.peak_mib).reduce(f64::max),
        base,
        // What a single run printed last (a combined row repeats nothing).
        note: match runs {
            [run] => run.last_line().to_string(),
            _ => String::new(),
        },
    }
}

/// 100000 → "100,000".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(secs: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}×", secs / b),
        _ => "—".to_string(),
    }
}

fn secs_or_dash(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), |s| format!("{s:.3}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let accounts = env_usize("NATSFORM_BENCH_ACCOUNTS", 1000);
    let users = env_usize("NATSFORM_BENCH_USERS", 100);
    let big = env_usize("NATSFORM_BENCH_BIG", 10_000);
    let rounds = env_usize("NATSFORM_BENCH_ROUNDS", 3);
    assert!(
        accounts >= 1 && users >= 1 && big >= 2,
        "NATSFORM_BENCH_ACCOUNTS and _USERS must be at least 1, _BIG at least 2"
    );
    let threads = rayon::current_num_threads();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let env = Env {
        home: root.join("home"),
        identity: identity.to_string(),
    };
    std::fs::create_dir_all(&env.home).unwrap();
    let go = build_go();
    if let Go::Missing(why) = &go {
        eprintln!("{why}");
    }

    // 1 first: apply from empty, accounts × users. First, because it
    // creates ~100,000 files: on an ext4 without a journal (the machine
    // README's figures come from) inodes freed in the last minutes are
    // skipped one by one when new ones are allocated, so creating many
    // files right after scenarios 2 and 3 replaced and removed thousands
    // would measure that file-system quirk, not natsform.
    let all_dir = root.join("all");
    let all_shape = Shape::new(&recipient, accounts, users);
    write_manifest(&all_dir, &all_shape);
    eprintln!("apply from empty: {accounts} accounts × {users} users…");
    let all_empty = natsform_ok(&env, &all_dir, APPLY, 0);
    eprintln!("plan, no changes…");
    let all_plan = natsform_ok(&env, &all_dir, PLAN_CHECK, 0);
    // Right after scenario 1, for the reason above: the file system's
    // share of it (one run: it creates as many files again).
    eprintln!("the file system's share of apply from empty…");
    let phases = [
        written_files(&all_dir, "vault"),
        written_files(&all_dir, "store"),
    ];
    let floor_files: usize = phases.iter().flatten().map(|(_, f)| f.len()).sum();
    let floor_bytes: usize = phases
        .iter()
        .flatten()
        .flat_map(|(_, f)| f.iter().map(|(_, n)| n))
        .sum();
    let floor = fs_floor(&phases, &root.join("floor"));
    drop(phases);
    // 2 and 3: one account of `big` users.
    let big_dir = root.join("big");
    let big_shape = Shape::new(&recipient, 1, big);
    write_manifest(&big_dir, &big_shape);
    eprintln!("apply from empty: one account of {big} users…");
    let big_empty = natsform_ok(&env, &big_dir, APPLY, 0);
    assert_converged(&env, &big_dir);

    eprintln!("rotate every role key of that account…");
    let rotated = Shape {
        role_key: Some("v2"),
        ..big_shape
    };
    write_manifest(&big_dir, &rotated);
    let rotate_plan = natsform_ok(&env, &big_dir, PLAN, 0);
    assert!(
        rotate_plan.summary().contains(&format!(
            "0 to create, 1 to update, {big} to re-issue, 0 to replace, 0 to delete"
        )),
        "{}",
        rotate_plan.summary()
    );
    let rotate_apply = natsform_ok(&env, &big_dir, APPLY, 0);
    assert_converged(&env, &big_dir);

    eprintln!("delete one user of that account…");
    let deleted = Shape {
        without_user: Some((0, big / 2)),
        ..rotated
    };
    write_manifest(&big_dir, &deleted);
    let delete_plan = natsform_ok(&env, &big_dir, PLAN, 0);
    assert!(
        delete_plan.summary().starts_with(
            "Plan: 0 to create, 1 to update, 0 to re-issue, 0 to replace, 1 to delete."
        ),
        "{}",
        delete_plan.summary()
    );
    let delete_apply = natsform_ok(&env, &big_dir, APPLY, 0);
    assert_converged(&env, &big_dir);

    // The baselines last: they hold every token in this process, and on
    // Linux a child's peak memory (ru_maxrss) starts from its parent's
    // resident size when it was spawned, so a natsform run started after
    // them would be charged with this process's memory.
    eprintln!("baselines for {} user JWTs…", accounts * users);
    let all_tokens = user_tokens(&all_dir);
    assert_eq!(all_tokens.len(), accounts * users);
    let all_base = baseline(&root.join("sign-all"), &all_shape, &all_tokens, &go, rounds);
    drop(all_tokens);
    eprintln!("baselines for {big} user JWTs…");
    let big_tokens = user_tokens(&big_dir);
    assert_eq!(big_tokens.len(), big - 1);
    let big_base = baseline(&root.join("sign-big"), &deleted, &big_tokens, &go, rounds);
    drop(big_tokens);

    let n_all = thousands(accounts * users);
    let n_big = thousands(big);
    let rows = [
        row(
            format!(
                "apply from empty, {n_all} users ({} accounts × {users})",
                thousands(accounts)
            ),
            &[&all_empty],
            0,
        ),
        row(format!("plan, no changes, {n_all} users"), &[&all_plan], 0),
        row(
            format!("apply from empty, one account of {n_big} users"),
            &[&big_empty],
            1,
        ),
        row(
            format!("rotate every role key of that account ({n_big} users re-issued): plan"),
            &[&rotate_plan],
            1,
        ),
        row("  … apply", &[&rotate_apply], 1),
        row("  … plan + apply", &[&rotate_plan, &rotate_apply], 1),
        row(
            format!("delete one user of {n_big}: plan"),
            &[&delete_plan],
            1,
        ),
        row("  … apply", &[&delete_apply], 1),
        row("  … plan + apply", &[&delete_plan, &delete_apply], 1),
    ];
    let bases = [&all_base, &big_base];

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nnatsform apply benchmark, same run ({threads} rayon threads)"
    );
    let _ = writeln!(
        t,
        "command: NATSFORM_BENCH_ACCOUNTS={accounts} NATSFORM_BENCH_USERS={users} NATSFORM_BENCH_BIG={big} NATSFORM_BENCH_ROUNDS={rounds} cargo bench --bench apply"
    );
    let _ = writeln!(
        t,
        "each row: `natsform -f natsform.toml apply --auto-approve --no-push` or `natsform -f natsform.toml plan` in a fresh process\n"
    );
    let _ = writeln!(
        t,
        "| baseline (same run, median of {rounds}) | user JWTs | seconds |"
    );
    let _ = writeln!(t, "|---|---:|---:|");
    for b in bases {
        let n = thousands(b.n);
        let _ = writeln!(
            t,
            "| natsform: encode + sign (`apply::sign`), 1 thread | {n} | {:.3} |",
            b.sign_1
        );
        let _ = writeln!(
            t,
            "| natsform: encode + sign, {threads} threads | {n} | {:.3} |",
            b.sign_n
        );
        let _ = writeln!(
            t,
            "| natsform: verify signatures, 1 thread | {n} | {:.3} |",
            b.verify_1
        );
        let _ = writeln!(
            t,
            "| natsform: verify signatures, {threads} threads | {n} | {:.3} |",
            b.verify_n
        );
        let _ = writeln!(
            t,
            "| Go jwt v2 loop: encode + sign | {n} | {} |",
            secs_or_dash(b.go_sign)
        );
        let _ = writeln!(
            t,
            "| Go jwt v2 loop: decode + verify | {n} | {} |",
            secs_or_dash(b.go_verify)
        );
    }
    let _ = writeln!(
        t,
        "\n| scenario | seconds | peak MiB | × sign 1 thread | × sign {threads} threads | × verify 1 thread | × verify {threads} threads | × Go sign | × Go verify |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let b = bases[r.base];
        let _ = writeln!(
            t,
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
            r.what,
            r.secs,
            r.peak_mib.map_or("—".into(), |m| format!("{m:.0}")),
            ratio(r.secs, Some(b.sign_1)),
            ratio(r.secs, Some(b.sign_n)),
            ratio(r.secs, Some(b.verify_1)),
            ratio(r.secs, Some(b.verify_n)),
            ratio(r.secs, b.go_sign),
            ratio(r.secs, b.go_verify),
        );
    }
    let _ = writeln!(
        t,
        "\nRatios are to the baselines for the same number of user JWTs ({} for the first two rows, {} for the others). A plan + apply row is the sum of both runs, its peak the larger.",
        thousands(all_base.n),
        thousands(big_base.n)
    );
    let _ = writeln!(
        t,
        "\nFile system alone (one run, right after apply from empty): writing files of the sizes and names of the {} that apply from empty wrote ({:.1} MiB; vault, then store), with the barriers of apply's batches (temporary files, syncfs, renames, syncfs; directories in parallel) and no key, JWT or age work: {floor:.3} s = {} of apply from empty ({:.3} s), {} of the Go encode + sign loop.",
        thousands(floor_files),
        floor_bytes as f64 / (1024.0 * 1024.0),
        ratio(floor, Some(all_empty.secs)),
        all_empty.secs,
        ratio(floor, all_base.go_sign),
    );
    if let Go::Missing(why) = &go {
        let _ = writeln!(t, "{why}");
    }
    let _ = writeln!(t, "\nwhat each natsform run printed last:");
    for r in &rows {
        if !r.note.is_empty() {
            let _ = writeln!(t, "  {}: {}", r.what.trim(), r.note);
        }
    }
    print!("{t}");
}
