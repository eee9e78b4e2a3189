//! Benchmark: `plan` on a generated trust tree of ACCOUNTS × USERS users
//! (default 1,000 × 100 = 100,000 users, 5 scoped roles per account),
//! against the cost of verifying every JWT signature once, in the same run.
//!
//!     cargo bench --bench plan
//!     NATSFORM_BENCH_ACCOUNTS=100 cargo bench --bench plan   # smaller
//!
//! Each plan runs in a child process (this binary in plan mode) so its peak
//! memory (VmHWM) is its own. The no-change plan runs twice: with empty
//! caches (every signature checked and the manifest parsed, as CI on a
//! fresh runner), then with the verified-signature and parsed-manifest
//! caches the first run wrote (as a second `natsform plan` on the same
//! machine). Figures are wall-clock on a shared machine:
//! compare the ratios, not the seconds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;

use natsform::keys::{self, KeyPair, Lock};
use natsform::plan::{self, views};
use natsform::store::Store;
use natsform::tree::ObjectId;
use natsform::workspace::{Parsing, Signatures, Workspace};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
mod common;

use common::{env_usize, signature_inputs, verify_1, verify_n, Shape, PLAN_RECIPIENT, ROLES};

fn manifest(accounts: usize, users: usize, extra_subject: bool) -> String {
    Shape {
        extra_subject,
        ..Shape::new(PLAN_RECIPIENT, accounts, users)
    }
    .manifest()
}

/// Writes manifest, lock, vault and store, as an applied project has them
/// (plan reads no secret, but checks that every seed file is there).
fn generate(dir: &Path, accounts: usize, users: usize) {
    let path = dir.join("natsform.toml");
    std::fs::write(&path, manifest(accounts, users, false)).unwrap();
    let ws = Workspace::open(&path).unwrap();
    let required = plan::required_keys(&ws.loaded.manifest);
    let pairs: Vec<(String, KeyPair)> = required
        .par_iter()
        .map(|(addr, (kind, _))| (addr.clone(), keys::generate(*kind)))
        .collect();
    let mut lock = Lock::new();
    let mut by_public: HashMap<String, &KeyPair> = HashMap::new();
    for (addr, kp) in &pairs {
        lock.insert(addr.clone(), kp.public_key()).unwrap();
        by_public.insert(kp.public_key(), kp);
    }
    lock.save(&ws.lock_path).unwrap();
    let recipients = keys::Recipients::parse(&ws.loaded.manifest.secrets.recipients).unwrap();
    // As apply lays the vault out: one seed file per operator, account and
    // signing key; each account's users' seeds in one bundle with its index.
    let vault = keys::Vault::new(&ws.vault_dir);
    let object = |addr: &str| addr.split('#').next().unwrap_or(addr).to_string();
    let account_keys: HashMap<String, String> = pairs
        .iter()
        .filter_map(|(addr, kp)| {
            let rest = addr.strip_prefix("account.")?;
            Some((object(rest), kp.public_key()))
        })
        .collect();
    let mut users: HashMap<String, Vec<&KeyPair>> = HashMap::new();
    for (addr, kp) in &pairs {
        match addr.strip_prefix("user.") {
            Some(rest) => {
                let account = object(rest).rsplit_once('/').unwrap().0.to_string();
                users
                    .entry(account_keys[&account].clone())
                    .or_default()
                    .push(kp);
            }
            None => assert!(vault.put(kp, &recipients).unwrap()),
        }
    }
    users.par_iter().for_each(|(account, kps)| {
        let mut seeds = keys::UserSeeds::new();
        for kp in kps {
            seeds.insert(KeyPair::from_seed(&kp.seed().unwrap()).unwrap());
        }
        let sealed = keys::seal_bundle(account, &seeds, &recipients).unwrap();
        let listed: Vec<String> = seeds.keys().map(str::to_string).collect();
        vault.write_bundle(account, Some(&sealed), &listed).unwrap();
    });
    let book: plan::KeyBook = lock
        .iter()
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    let state = ws.desired(&book);
    let store = Store::new(dir.join("store"));
    let objects: Vec<(&ObjectId, &plan::DesiredObject)> = state.objects.iter().collect();
    objects.par_iter().for_each(|(id, d)| {
        let signer = by_public[d.signer.public.as_ref().unwrap()];
        let token = natsform::apply::sign(d, 1_800_000_000, &[], signer).unwrap();
        let p = store.path_of(id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, token).unwrap();
    });
    std::fs::write(
        dir.join("store/bench/.nsc"),
        r#"{"managed":false,"name":"bench","kind":"operator","version":"1"}"#,
    )
    .unwrap();
}

fn tokens(dir: &Path) -> Vec<String> {
    let store = Store::new(dir.join("store"));
    store
        .read()
        .unwrap()
        .jwts
        .into_values()
        .map(|j| j.token)
        .collect()
}

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Child mode: load, plan and render like `natsform plan`; print seconds,
/// peak MiB and the summary line.
fn plan_child(manifest: &Path) {
    if std::env::var_os("NATSFORM_BENCH_PHASES").is_some() {
        phases(manifest);
    }
    let start = Instant::now();
    let ws = Workspace::open_cached(manifest, Signatures::Remembered, Parsing::Remembered).unwrap();
    let plan = ws.plan(natsform::workspace::now());
    // Streamed, as `natsform plan` prints it; only the size is kept.
    let mut sink = Sink(0);
    views::text::write(&mut sink, &plan, views::Style { color: false });
    ws.remember_verified().unwrap();
    ws.remember_parsed().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let v = ws.verification();
    eprintln!(
        "  (signatures: {} checked, {} remembered)",
        v.checked, v.remembered
    );
    assert!(plan.blockers.is_empty(), "{:?}", &plan.blockers[..1]);
    let summary = views::text::summary(&plan);
    println!("{secs:.3}\t{:.0}\t{}\t{summary}", peak_rss_mib(), sink.0);
}

/// Where the time of a plan goes (NATSFORM_BENCH_PHASES=1), on stderr.
fn phases(manifest: &Path) {
    let t = Instant::now();
    let loaded = natsform::manifest::load(manifest).unwrap();
    eprintln!(
        "  parse manifest     {:.3}s  rss {:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let t = Instant::now();
    natsform::manifest::validate(&loaded).unwrap();
    eprintln!("  validate           {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let store = Store::new(manifest.parent().unwrap().join("store"));
    let contents = store.read().unwrap();
    eprintln!(
        "  read store         {:.3}s  rss {:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let t = Instant::now();
    let existing = plan::existing::decode_all(contents);
    eprintln!(
        "  decode + verify    {:.3}s  rss {:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let lock = Lock::load(&manifest.parent().unwrap().join("natsform.lock")).unwrap();
    let keys: plan::KeyBook = lock
        .iter()
        .map(|(a, k)| (a.to_string(), k.to_string()))
        .collect();
    let t = Instant::now();
    let state = plan::desired_state(&loaded.manifest, &keys, &existing, &Default::default());
    eprintln!(
        "  desired state      {:.3}s  rss {:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let required = plan::required_keys(&loaded.manifest);
    let t = Instant::now();
    let p = plan::plan(&plan::Inputs {
        state: &state,
        existing: &existing,
        keys: &keys,
        required: &required,
        now: natsform::workspace::now(),
        reissue_before: 30 * 86_400,
        recorded: &Default::default(),
        seed_problems: &Default::default(),
    });
    eprintln!(
        "  plan               {:.3}s  rss {:.0} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let t = Instant::now();
    let _ = views::text::text(&p, views::Style { color: false });
    eprintln!("  render             {:.3}s", t.elapsed().as_secs_f64());
}

/// Counts what a plan would print.
struct Sink(usize);

impl std::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn run_child(manifest: &Path) -> (f64, f64, String) {
    let exe = std::env::current_exe().unwrap();
    let cache_home = manifest.parent().unwrap().with_extension("cache-home");
    let out = Command::new(exe)
        .env("XDG_CACHE_HOME", cache_home)
        .arg("--plan-child")
        .arg(manifest)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let mut f = line.trim().splitn(4, '\t');
    let secs = f.next().unwrap().parse().unwrap();
    let mib = f.next().unwrap().parse().unwrap();
    let _bytes = f.next();
    (secs, mib, f.next().unwrap_or_default().to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--plan-child") {
        plan_child(Path::new(&args[i + 1]));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let accounts = env_usize("NATSFORM_BENCH_ACCOUNTS", 1000);
    let users = env_usize("NATSFORM_BENCH_USERS", 100);
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    eprintln!(
        "generating {accounts} accounts × {users} users ({} roles each) in {}…",
        ROLES,
        dir.display()
    );
    let t = Instant::now();
    generate(&dir, accounts, users);
    eprintln!("generated in {:.1}s", t.elapsed().as_secs_f64());

    let toks = tokens(&dir);
    let inputs = signature_inputs(&toks);
    let verify_1 = verify_1(&inputs);
    let verify_n = verify_n(&inputs);

    let manifest_path = dir.join("natsform.toml");
    let (nochange_s, nochange_mib, nochange_summary) = run_child(&manifest_path);
    assert!(
        nochange_summary
            .contains("0 to create, 0 to update, 0 to re-issue, 0 to replace, 0 to delete"),
        "{nochange_summary}"
    );
    let (warm_s, warm_mib, warm_summary) = run_child(&manifest_path);
    assert_eq!(warm_summary, nochange_summary);
    std::fs::write(&manifest_path, manifest(accounts, users, true)).unwrap();
    let (change_s, change_mib, change_summary) = run_child(&manifest_path);

    let threads = rayon::current_num_threads();
    println!(
        "JWTs: {} ({} users), cores used by rayon: {threads}",
        toks.len(),
        accounts * users
    );
    println!("baseline: verify every signature once: {verify_1:.3}s on 1 thread, {verify_n:.3}s on {threads}");
    println!("plan, no changes, empty cache (every signature checked):      {nochange_s:.3}s  peak {nochange_mib:.0} MiB  = {:.2}× the 1-thread verify, {:.2}× the {threads}-thread verify", nochange_s / verify_1, nochange_s / verify_n);
    println!("plan, no changes, cache of the run before (none checked):     {warm_s:.3}s  peak {warm_mib:.0} MiB  = {:.2}× the 1-thread verify, {:.2}× the {threads}-thread verify, {:.2}× the empty-cache plan", warm_s / verify_1, warm_s / verify_n, warm_s / nochange_s);
    println!("plan, one role changed in every account (warm cache): {change_s:.3}s  peak {change_mib:.0} MiB  = {:.2}× the 1-thread verify  ({change_summary})", change_s / verify_1);
    let _ = std::fs::remove_dir_all(dir.with_extension("cache-home"));
}
