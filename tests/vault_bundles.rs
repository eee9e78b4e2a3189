//! User seeds sealed per account (`vault/<ACCOUNT>.users.age`, with its
//! public index `<ACCOUNT>.users.keys`): one file per account, rewritten
//! only when that account's users change; every line's shape checked on
//! opening, its seed against its key where the seed is used;
//! recoverable with age alone; per-user seed files written before bundles
//! keep working and move into the bundle when it is rewritten.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use support::cli::{demo_identity, Project};

const DEMO: &str = "age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9";

fn demo() -> age::x25519::Identity {
    let text = fs::read_to_string(demo_identity()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    age::x25519::Identity::from_str(line).unwrap()
}

/// What `age -d -i demo-identity.txt FILE` prints (the age crate, not
/// natsform).
fn age_decrypt(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    let d = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
    let id = demo();
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    out
}

/// What `age -e -a -r DEMO` writes for `plain`.
fn age_encrypt(plain: &str) -> Vec<u8> {
    let r = age::x25519::Recipient::from_str(DEMO).unwrap();
    let e = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut w = e.wrap_output(armor).unwrap();
    w.write_all(plain.as_bytes()).unwrap();
    w.finish().unwrap().finish().unwrap();
    out
}

fn lock_key(p: &Project, address: &str) -> String {
    lock_key_opt(p, address).unwrap_or_else(|| panic!("{address} not in the lock"))
}

fn lock_key_opt(p: &Project, address: &str) -> Option<String> {
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    lock.lines().find_map(|l| {
        let (a, k) = l.split_once(" = ")?;
        (a.trim_matches('"') == address).then(|| k.trim_matches('"').to_string())
    })
}

fn bundle(p: &Project, account_address: &str) -> PathBuf {
    p.path()
        .join("vault")
        .join(format!("{}.users.age", lock_key(p, account_address)))
}

/// Swaps the seeds of the users on lines 2 and 3 of the bundle at `file`
/// (`lines`: its plaintext), so that each line names one key and holds
/// the other's seed, and seals it again as `age` would. Returns both
/// lines' (key, seed) as they were.
fn swap_seeds(file: &Path, lines: &mut [String]) -> [(String, String); 2] {
    let split = |l: &str| {
        l.split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap()
    };
    let (k1, s1) = split(&lines[1]);
    let (k2, s2) = split(&lines[2]);
    lines[1] = format!("{k1} {s2}");
    lines[2] = format!("{k2} {s1}");
    fs::write(file, age_encrypt(&(lines.join("\n") + "\n"))).unwrap();
    [(k1, s1), (k2, s2)]
}

fn vault_names(p: &Project) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(p.path().join("vault"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

fn append(p: &Project, text: &str) {
    let mut m = fs::read_to_string(&p.manifest).unwrap();
    m.push_str(text);
    fs::write(&p.manifest, m).unwrap();
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The documented plaintext: the header naming the account, then one
/// `<USER_PUBLIC_KEY> <SEED>` line per user, sorted, each seed its key's.
fn check_documented_format(plain: &str, account: &str) -> Vec<String> {
    let mut lines = plain.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "# natsform user seeds of account {account}; one \"<USER_PUBLIC_KEY> <SEED>\" per line"
        )
    );
    let mut keys = Vec::new();
    for line in lines {
        let (public, seed) = line.split_once(' ').unwrap();
        assert_eq!(
            nkeys::KeyPair::from_seed(seed).unwrap().public_key(),
            public
        );
        keys.push(public.to_string());
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "sorted by public key");
    assert!(plain.ends_with('\n'));
    keys
}

#[test]
fn a_hundred_users_of_one_account_are_one_bundle_age_alone_recovers() {
    let mut text = format!(
        "[secrets]\nrecipients = [\"{DEMO}\"]\n\n[operators.O]\nsystem_account = \"SYS\"\n\n[operators.O.accounts.SYS.users.sys]\n\n"
    );
    for i in 0..100 {
        text.push_str(&format!("[operators.O.accounts.A.users.u{i:03}]\n"));
    }
    let p = Project::with_manifest("natsform.toml", &text);
    p.apply();
    let names = vault_names(&p);
    let a = lock_key(&p, "account.O/A#v1");
    // Operator and two accounts one file each; one bundle (and its index)
    // per account with users; no per-user file.
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".users.age")).count(),
        2,
        "{names:?}"
    );
    assert!(names.contains(&format!("{a}.users.age")), "{names:?}");
    assert!(names.contains(&format!("{a}.users.keys")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with('U')), "{names:?}");
    assert_eq!(names.len(), 3 + 2 * 2, "{names:?}");

    // age alone recovers every seed, in the documented format.
    let plain = age_decrypt(&bundle(&p, "account.O/A#v1"));
    let keys = check_documented_format(&plain, &a);
    assert_eq!(keys.len(), 100);
    for i in [0, 42, 99] {
        let addr = format!("user.O/A/u{i:03}#v1");
        assert!(keys.contains(&lock_key(&p, &addr)), "{addr}");
    }
    // The seed age recovers is the one creds prints.
    let u042 = lock_key(&p, "user.O/A/u042#v1");
    let line = plain.lines().find(|l| l.starts_with(&u042)).unwrap();
    let seed = line.split_once(' ').unwrap().1;
    assert!(p.creds("A/u042").contains(seed));
    // The index lists the same keys, in clear.
    let index = fs::read_to_string(p.path().join("vault").join(format!("{a}.users.keys"))).unwrap();
    assert_eq!(index.lines().skip(1).collect::<Vec<_>>(), keys);
    assert!(index.starts_with("# natsform: public keys of the users whose seeds"));
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
}

#[test]
fn adding_or_rotating_a_user_changes_only_its_accounts_bundle() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "applied"]);
    let a = lock_key(&p, "account.O2/A#v1");

    append(
        &p,
        "\n[operators.O2.accounts.A.users.newcomer]\nsigner = \"main\"\n",
    );
    let plan = p.run_without_identity(&["plan"]).success().stdout;
    assert!(
        plan.contains(&format!(
            "Bundles of user seeds to rewrite (one age file per account; other accounts' stay as they are):\n  - account.O2/A#v1 ({}…): 1 user added",
            &a[..8]
        )) || plan.contains("account.O2/A#v1 (") && plan.contains("): 1 user added"),
        "{plan}"
    );
    p.apply();
    let changed = git(p.path(), &["status", "--porcelain", "--", "vault"]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            format!(" M vault/{a}.users.age"),
            format!(" M vault/{a}.users.keys")
        ],
        "only account A's bundle and its index change"
    );
    let diff = git(p.path(), &["diff", "--", &format!("vault/{a}.users.keys")]);
    let newcomer = lock_key(&p, "user.O2/A/newcomer#v1");
    assert!(diff.contains(&format!("+{newcomer}")), "{diff}");
    let plain = age_decrypt(&bundle(&p, "account.O2/A#v1"));
    assert_eq!(check_documented_format(&plain, &a).len(), 3);
    p.creds("A/newcomer");
    p.creds("A/U");
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "newcomer"]);

    // Rotating one user's key: its account's bundle holds the new seed
    // and not the old one; nothing else in the vault changes.
    let old = lock_key(&p, "user.O2/sales/pam#v1");
    let sales = lock_key(&p, "account.O2/sales#v1");
    edit(
        &p,
        "[operators.O2.accounts.sales.users.pam]\n",
        "[operators.O2.accounts.sales.users.pam]\nkey = \"v2\"\n",
    );
    p.apply();
    let changed = git(p.path(), &["status", "--porcelain", "--", "vault"]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            format!(" M vault/{sales}.users.age"),
            format!(" M vault/{sales}.users.keys")
        ]
    );
    let new = lock_key(&p, "user.O2/sales/pam#v2");
    let plain = age_decrypt(&bundle(&p, "account.O2/sales#v1"));
    let keys = check_documented_format(&plain, &sales);
    assert!(keys.contains(&new) && !keys.contains(&old), "{keys:?}");
    assert!(p.creds("sales/pam").contains("NATS USER JWT"));
    // A second apply rewrites nothing (age output is randomised: a bundle
    // is sealed again only when its seeds or recipients change).
    let before = p.files();
    p.apply();
    assert_eq!(p.files(), before);
}

#[test]
fn a_deleted_users_seed_leaves_the_bundle() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let joe = lock_key(&p, "user.O2/sales/joe#v1");
    let pam = lock_key(&p, "user.O2/sales/pam#v1");
    edit(
        &p,
        "[operators.O2.accounts.sales.users.joe]\nsigner = \"team-service\"\ntags = [\"team:leads\"]\n",
        "",
    );
    let plan = p.run_without_identity(&["plan"]).success().stdout;
    assert!(plan.contains("account.O2/sales#v1 ("), "{plan}");
    assert!(plan.contains("): 1 user leaving"), "{plan}");
    p.apply();
    let plain = age_decrypt(&bundle(&p, "account.O2/sales#v1"));
    assert!(!plain.contains(&joe), "{plain}");
    assert!(plain.contains(&pam), "{plain}");
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
}

/// A line holding another key's (well-formed) seed is refused wherever the
/// seed is used (`creds`); apply, which never uses a user's seed, carries
/// such a line over as it is when it rewrites the bundle, so it stays
/// refused. A damaged line or a key listed twice is refused on opening:
/// apply that must rewrite the bundle stops before any write.
#[test]
fn a_bundle_line_holding_another_keys_seed_is_refused_by_creds_and_by_an_apply_that_rewrites_it() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let file = bundle(&p, "account.O2/A#v1");
    let plain = age_decrypt(&file);
    let mut lines: Vec<String> = plain.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3);
    let [(k1, s1), _] = swap_seeds(&file, &mut lines);

    let run = p.run(&["creds", "A/U"]).failure();
    assert!(run.stderr.contains("holds the seed of"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    // Apply that must rewrite the bundle (a user added) checks every line
    // first and refuses, before any write, naming the bundle's line.
    append(&p, "\n[operators.O2.accounts.A.users.newcomer]\n");
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(run.stderr.contains("holds the seed of"), "{}", run.stderr);
    assert!(run.stderr.contains("line 2:"), "{}", run.stderr);
    assert!(p.files() == before, "a refused apply changed files");
    // The bundle restored (from git history, say): apply goes on.
    fs::write(&file, age_encrypt(&plain)).unwrap();
    p.apply();
    let after = age_decrypt(&file);
    assert_eq!(after.lines().count(), 4, "{after:?}");
    p.run(&["creds", "A/U"]).success();
    p.run(&["creds", "A/newcomer"]).success();

    // A damaged seed (its checksum wrong) is refused on opening: apply
    // that must rewrite the bundle stops before any write.
    let damaged: String = {
        let c = if &s1[20..21] == "A" { 'B' } else { 'A' };
        format!("{}{c}{}", &s1[..20], &s1[21..])
    };
    let mut broken: Vec<String> = after.lines().map(str::to_string).collect();
    let i = broken.iter().position(|l| l.starts_with(&k1)).unwrap();
    broken[i] = format!("{k1} {damaged}");
    fs::write(&file, age_encrypt(&(broken.join("\n") + "\n"))).unwrap();
    append(&p, "\n[operators.O2.accounts.A.users.another]\n");
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(
        run.stderr.contains("is not a valid nkey seed of a user"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("line {}:", i + 1)),
        "{}",
        run.stderr
    );
    assert!(p.files() == before, "a refused apply changed files");

    // A key listed twice is refused too.
    let dup = format!(
        "{}\n{}\n{}\n",
        lines[0],
        format_args!("{k1} {s1}"),
        format_args!("{k1} {s1}")
    );
    fs::write(&file, age_encrypt(&dup)).unwrap();
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(run.stderr.contains("is listed twice"), "{}", run.stderr);
    assert!(p.files() == before, "a refused apply changed files");
}

/// The cache of checked bundles (beside the verified-signature cache).
fn checked_bundles(p: &Project) -> natsform::verified::Cache {
    let dir = p.project_dir().canonicalize().unwrap();
    natsform::verified::Cache::at(&p.cache_home(), &dir).of_kind(natsform::verified::Kind::Bundles)
}

fn digest_of(path: &Path) -> natsform::verified::Digest {
    natsform::verified::digest_bytes(&fs::read(path).unwrap())
}

/// Apply remembers the exact bytes of each bundle it sealed (in the user's
/// cache, never the repository) and, opening those bytes again to rewrite
/// the bundle, does not derive every line's key once more. Bytes it did not
/// seal are checked line by line; a line's seed is still checked wherever
/// it is used, so even a cache that vouches for foreign bytes carries a bad
/// line over without ever handing its seed out.
#[test]
fn a_bundle_apply_sealed_is_remembered_and_only_those_bytes_skip_the_line_check() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let cache = checked_bundles(&p);
    let file = bundle(&p, "account.O2/A#v1");
    let sealed = digest_of(&file);
    let (remembered, note) = cache.load();
    assert_eq!(note, None);
    assert!(remembered.contains(&sealed), "{remembered:?}");

    // A user added: the bundle is rewritten; its new bytes replace the old.
    append(&p, "\n[operators.O2.accounts.A.users.first]\n");
    p.apply();
    let (remembered, _) = cache.load();
    let resealed = digest_of(&file);
    assert_ne!(resealed, sealed);
    assert!(remembered.contains(&resealed), "{remembered:?}");
    assert!(
        !remembered.contains(&sealed),
        "a replaced bundle stays remembered"
    );

    // Foreign bytes (two users' seeds swapped, sealed by someone else):
    // checked line by line, refused before any write.
    let plain = age_decrypt(&file);
    let mut lines: Vec<String> = plain.lines().map(str::to_string).collect();
    let [(k1, _), (_, s2)] = swap_seeds(&file, &mut lines);
    append(&p, "\n[operators.O2.accounts.A.users.second]\n");
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(run.stderr.contains("holds the seed of"), "{}", run.stderr);
    assert!(p.files() == before, "a refused apply changed files");

    // The same bytes vouched for by this user's cache (as if this user's
    // apply had sealed them): not checked again, so apply goes on and
    // carries both lines over as they are; `creds` still refuses them.
    let mut vouched: Vec<natsform::verified::Digest> = remembered.iter().copied().collect();
    vouched.push(digest_of(&file));
    cache.save(&vouched).unwrap();
    p.apply();
    let after = age_decrypt(&file);
    assert!(
        after.contains(&format!("{k1} {s2}")),
        "the line was not carried over"
    );
    let user = |key: &str| {
        let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
        let line = lock
            .lines()
            .find(|l| l.ends_with(&format!("\"{key}\"")))
            .unwrap()
            .to_string();
        line.split_once(" = ")
            .unwrap()
            .0
            .trim_matches('"')
            .to_string()
    };
    let name = user(&k1);
    let name = name
        .rsplit_once('/')
        .map_or(name.as_str(), |(_, n)| n)
        .to_string();
    let name = name.split('#').next().unwrap().to_string();
    let run = p.run(&["creds", &format!("A/{name}")]).failure();
    assert!(run.stderr.contains("holds the seed of"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // `plan --verify-all` takes nothing on trust: it forgets the bundles
    // remembered, so the next apply that re-seals checks every line again.
    p.run(&["plan", "--verify-all"]).success();
    assert!(
        !cache.path().exists(),
        "plan --verify-all kept the bundle cache"
    );
    append(&p, "\n[operators.O2.accounts.A.users.third]\n");
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(run.stderr.contains("holds the seed of"), "{}", run.stderr);
}

/// A user deleted: its seed stays in the bundle until the store is written,
/// then leaves it (step 7a); what is remembered is the bundle on disk at
/// the end, and the other accounts' bundles stay remembered.
#[test]
fn a_deletion_remembers_the_bundle_it_leaves_on_disk() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    append(&p, "\n[operators.O2.accounts.A.users.leaving]\n");
    p.apply();
    let cache = checked_bundles(&p);
    let file = bundle(&p, "account.O2/A#v1");
    let sales = bundle(&p, "account.O2/sales#v1");
    let before = digest_of(&file);
    let (remembered, _) = cache.load();
    assert!(remembered.contains(&before) && remembered.contains(&digest_of(&sales)));
    edit(&p, "\n[operators.O2.accounts.A.users.leaving]\n", "\n");
    p.apply();
    let leaving = lock_key_opt(&p, "user.O2/A/leaving#v1");
    assert_eq!(leaving, None, "the deleted user is still in the lock");
    let after = digest_of(&file);
    assert_ne!(after, before);
    assert_eq!(age_decrypt(&file).lines().count(), 3);
    let (remembered, note) = cache.load();
    assert_eq!(note, None);
    assert!(
        remembered.contains(&after),
        "the bundle on disk is not remembered"
    );
    assert!(
        !remembered.contains(&before),
        "the replaced bundle stays remembered"
    );
    assert!(
        remembered.contains(&digest_of(&sales)),
        "another account's bundle was forgotten"
    );
    // Exactly the bundles in the vault.
    let mut on_disk: Vec<natsform::verified::Digest> = vault_names(&p)
        .iter()
        .filter(|n| n.ends_with(".users.age"))
        .map(|n| digest_of(&p.path().join("vault").join(n)))
        .collect();
    on_disk.sort();
    assert_eq!(remembered.iter().copied().collect::<Vec<_>>(), on_disk);
}

#[test]
fn per_user_seed_files_from_before_bundles_keep_working_then_move_in() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let a = lock_key(&p, "account.O2/A#v1");
    let vault = p.path().join("vault");
    // The vault as natsform wrote it before bundles: account A's users each
    // in a file of their own (the seed alone, sealed to the recipients).
    let plain = age_decrypt(&bundle(&p, "account.O2/A#v1"));
    let mut legacy = Vec::new();
    for line in plain.lines().skip(1) {
        let (public, seed) = line.split_once(' ').unwrap();
        fs::write(vault.join(format!("{public}.age")), age_encrypt(seed)).unwrap();
        legacy.push(public.to_string());
    }
    fs::remove_file(vault.join(format!("{a}.users.age"))).unwrap();
    fs::remove_file(vault.join(format!("{a}.users.keys"))).unwrap();

    // Not flagged by plan, and creds reads them.
    let plan = p.run_without_identity(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(p.creds("A/U").contains("NATS USER JWT"));
    let before = p.files();
    p.apply();
    assert_eq!(p.files(), before, "left as they are while A's users stay");

    // When A's bundle is written anyway (a user added), they move into it.
    append(&p, "\n[operators.O2.accounts.A.users.newcomer]\n");
    let plan = p.run_without_identity(&["plan"]).success().stdout;
    assert!(
        plan.contains("): 1 user added, 2 seed files of its own moved in"),
        "{plan}"
    );
    p.apply();
    for k in &legacy {
        assert!(!vault.join(format!("{k}.age")).exists(), "{k}");
    }
    let plain = age_decrypt(&bundle(&p, "account.O2/A#v1"));
    let keys = check_documented_format(&plain, &a);
    assert_eq!(keys.len(), 3);
    assert!(legacy.iter().all(|k| keys.contains(k)));
    assert!(p.creds("A/U").contains("NATS USER JWT"));
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
}

#[test]
fn a_replaced_account_key_moves_its_bundle() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let old = lock_key(&p, "account.O2/sales#v1");
    let users = check_documented_format(&age_decrypt(&bundle(&p, "account.O2/sales#v1")), &old);
    append(&p, "");
    edit(
        &p,
        "[operators.O2.accounts.sales.signing_keys.team-service]",
        "[operators.O2.accounts.sales]\nkey = \"v2\"\n\n[operators.O2.accounts.sales.signing_keys.team-service]",
    );
    let plan = p.run_without_identity(&["plan"]).success().stdout;
    assert!(
        plan.contains(&format!("moved from {old}.users.age")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "{old}.users.age (users' seeds of account.O2/sales#v1)"
        )),
        "{plan}"
    );
    p.apply();
    let new = lock_key(&p, "account.O2/sales#v2");
    assert!(!p
        .path()
        .join("vault")
        .join(format!("{old}.users.age"))
        .exists());
    assert!(!p
        .path()
        .join("vault")
        .join(format!("{old}.users.keys"))
        .exists());
    let moved = check_documented_format(&age_decrypt(&bundle(&p, "account.O2/sales#v2")), &new);
    assert_eq!(moved, users, "the same users' seeds, under the new name");
    assert!(p.creds("sales/joe").contains("NATS USER JWT"));
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
}

#[test]
fn a_bundle_that_is_a_link_is_never_followed() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let outside = tempfile::tempdir().unwrap();
    let file = bundle(&p, "account.O2/A#v1");
    let target = outside.path().join("bundle.age");
    fs::rename(&file, &target).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let outside_bytes = fs::read(&target).unwrap();
    append(&p, "\n[operators.O2.accounts.A.users.newcomer]\n");
    let before = p.files();
    // Plan (no identity) flags every user of the account; apply and creds
    // refuse; nothing outside or inside changes.
    let plan = p.run_without_identity(&["plan"]).failure();
    for user in ["U", "worker"] {
        assert!(
            plan.stdout.contains(&format!(
                "Error: user.O2/A/{user}#v1: its account's seed bundle"
            )),
            "{}",
            plan.stdout
        );
    }
    assert!(
        plan.stdout.contains(".users.age is a symbolic link"),
        "{}",
        plan.stdout
    );
    p.run(&["apply", "--auto-approve"]).failure();
    let creds = p.run(&["creds", "A/U"]).failure();
    assert!(creds.stderr.contains("symbolic link"), "{}", creds.stderr);
    assert!(p.files() == before, "a refused run changed files");
    assert_eq!(fs::read(&target).unwrap(), outside_bytes);
}
