//! `secrets.recipients` follows the team (`sops updatekeys`): a recipient
//! added or removed shows in the plan (no identity needed) as seeds to
//! re-seal, apply re-seals them, and age itself agrees on who can open
//! each seed file. Seed files no lock entry names are listed and removed.

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use support::cli::{demo_identity, Project};

const DEMO: &str = "age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9";

/// A teammate's identity, in a file outside the project; the recipient.
struct Teammate {
    _dir: tempfile::TempDir,
    file: PathBuf,
    recipient: String,
}

fn teammate() -> Teammate {
    let id = age::x25519::Identity::generate();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teammate.txt");
    fs::write(&file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    Teammate {
        recipient: id.to_public().to_string(),
        file,
        _dir: dir,
    }
}

fn set_recipients(p: &Project, recipients: &[&str]) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    let old = format!("recipients = [\"{DEMO}\"]");
    let text = if text.contains(&old) {
        text.replacen(&old, "recipients = RECIPIENTS", 1)
    } else {
        let start = text.find("recipients = [").unwrap();
        let end = start + text[start..].find(']').unwrap() + 1;
        format!("{}recipients = RECIPIENTS{}", &text[..start], &text[end..])
    };
    let list = recipients
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    fs::write(
        &p.manifest,
        text.replace("RECIPIENTS", &format!("[{list}]")),
    )
    .unwrap();
}

fn seed_files(p: &Project) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(p.path().join("vault"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "age"))
        .collect();
    files.sort();
    files
}

/// Whether `identity_file` opens the armoured age file `path`, as `age -d`
/// would decide it (the age crate, not natsform).
fn age_opens(path: &Path, identity_file: &Path) -> bool {
    let text = fs::read_to_string(identity_file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let identity = age::x25519::Identity::from_str(line).unwrap();
    let bytes = fs::read(path).unwrap();
    let decryptor =
        age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
    match decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)) {
        Ok(mut r) => {
            let mut seed = Vec::new();
            r.read_to_end(&mut seed).unwrap();
            true
        }
        Err(age::DecryptError::NoMatchingKeys) => false,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The plaintext of the armoured age file `path`, opened with the age
/// crate alone (what `age -d -i identity_file` prints).
fn age_plaintext(path: &Path, identity_file: &Path) -> String {
    let text = fs::read_to_string(identity_file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let identity = age::x25519::Identity::from_str(line).unwrap();
    let bytes = fs::read(path).unwrap();
    let decryptor =
        age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&bytes[..])).unwrap();
    let mut r = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    out
}

fn creds_with(p: &Project, identity: &Path) -> support::cli::Run {
    p.natsform(&["creds", "A/U"])
        .env("NATSFORM_AGE_IDENTITY", identity)
        .run()
}

fn vault_bytes(p: &Project) -> Vec<(PathBuf, Vec<u8>)> {
    seed_files(p)
        .into_iter()
        .map(|f| {
            let b = fs::read(&f).unwrap();
            (f, b)
        })
        .collect()
}

#[test]
fn a_recipient_added_then_removed_is_resealed_and_age_agrees() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let mate = teammate();
    let seeds = seed_files(&p);
    assert!(seeds.len() > 5);
    assert!(creds_with(&p, &mate.file)
        .failure()
        .stderr
        .contains("identity"));

    // Added: the plan, made with no identity at all, lists every seed.
    set_recipients(&p, &[DEMO, &mate.recipient]);
    let plan = p.run_without_identity(&["plan"]).success();
    insta::assert_snapshot!("added_plan", plan.snapshot(&p));
    assert_eq!(
        plan.stdout.matches("  ~ ").count(),
        seeds.len(),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("Warning"), "{}", plan.stdout);
    let json = p.run_without_identity(&["plan", "--json"]).success().stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["changes"], true);
    assert_eq!(
        doc["vault"]["reseal"].as_array().unwrap().len(),
        seeds.len()
    );
    assert!(doc["vault"]["reseal"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["removes_recipient"] == false));
    let md = p
        .run_without_identity(&["plan", "--format", "markdown"])
        .success()
        .stdout;
    assert!(md.contains("Seeds to re-seal"), "{md}");

    // Apply without an identity refuses and writes nothing.
    let before = p.files();
    p.run_without_identity(&["apply", "--auto-approve"])
        .failure();
    assert_eq!(p.files(), before);

    let lock = fs::read(p.path().join("natsform.lock")).unwrap();
    let applied = p.apply();
    assert!(
        applied
            .stdout
            .contains(&format!("{} seeds re-sealed", seeds.len())),
        "{}",
        applied.stdout
    );
    assert_eq!(fs::read(p.path().join("natsform.lock")).unwrap(), lock);
    assert_eq!(seed_files(&p), seeds, "the same keys, re-sealed in place");
    for f in &seeds {
        assert!(age_opens(f, &demo_identity()), "{}", f.display());
        assert!(age_opens(f, &mate.file), "{}", f.display());
    }
    let creds = creds_with(&p, &mate.file).success().stdout;
    assert!(creds.contains("NATS USER JWT"));
    // Converged: nothing to do, and a second apply rewrites nothing.
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
    let unchanged = p.files();
    p.apply();
    assert_eq!(p.files(), unchanged);

    // Removed: the demo identity is dropped; the plan warns about history.
    set_recipients(&p, &[&mate.recipient]);
    let plan = p.run_without_identity(&["plan"]).success();
    insta::assert_snapshot!("removed_plan", plan.snapshot(&p));
    assert!(
        plan.stdout.contains("git history still holds"),
        "{}",
        plan.stdout
    );
    let json = p.run_without_identity(&["plan", "--json"]).success().stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(doc["vault"]["reseal"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["removes_recipient"] == true));
    // The teammate's identity opens every seed, so it can apply.
    p.natsform(&["apply", "--auto-approve"])
        .env("NATSFORM_AGE_IDENTITY", &mate.file)
        .run()
        .success();
    for f in &seeds {
        assert!(!age_opens(f, &demo_identity()), "{}", f.display());
        assert!(age_opens(f, &mate.file), "{}", f.display());
    }
    creds_with(&p, &demo_identity()).failure();
    creds_with(&p, &mate.file).success();
    let done = p.run_without_identity(&["plan"]).success().stdout;
    assert!(done.starts_with("No changes."), "{done}");
}

#[test]
fn orphaned_seeds_are_listed_then_removed_and_others_untouched() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let lock = fs::read_to_string(p.path().join("natsform.lock")).unwrap();
    let worker_key = lock
        .lines()
        .find_map(|l| {
            let (a, k) = l.split_once(" = ")?;
            a.contains("worker")
                .then(|| k.trim_matches('"').to_string())
        })
        .unwrap();
    // An interrupted apply's leftover: a seed no lock entry names (sorted
    // after the worker's, so the snapshot's order is fixed).
    let stray = std::iter::repeat_with(nkeys::KeyPair::new_user)
        .find(|k| k.public_key() > worker_key)
        .unwrap();
    let recipient = age::x25519::Recipient::from_str(DEMO).unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut armored = Vec::new();
    {
        use std::io::Write;
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
                .unwrap();
        let mut w = encryptor.wrap_output(armor).unwrap();
        w.write_all(stray.seed().unwrap().as_bytes()).unwrap();
        w.finish().unwrap().finish().unwrap();
    }
    let stray_file = p
        .path()
        .join("vault")
        .join(format!("{}.age", stray.public_key()));
    fs::write(&stray_file, armored).unwrap();
    // A deleted user: its key leaves the lock in the same apply.
    let text = fs::read_to_string(&p.manifest).unwrap();
    let worker = "[operators.O2.accounts.A.users.worker]\nsigner = \"service\"\n";
    assert!(text.contains(worker));
    fs::write(&p.manifest, text.replacen(worker, "", 1)).unwrap();

    let plan = p.run_without_identity(&["plan"]).success();
    insta::assert_snapshot!("orphans_plan", plan.snapshot(&p));
    assert!(plan.stdout.contains(&format!("{}.age", stray.public_key())));
    // The deleted user's seed is in its account's bundle: that bundle is
    // rewritten without it, and no other.
    let a_key = lock
        .lines()
        .find_map(|l| {
            let (a, k) = l.split_once(" = ")?;
            (a.trim_matches('"') == "account.O2/A#v1").then(|| k.trim_matches('"').to_string())
        })
        .unwrap();
    assert!(
        plan.stdout.contains("account.O2/A#v1 (") && plan.stdout.contains("): 1 user leaving"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("1 unused seed file to remove, 1 bundle of user seeds to rewrite"),
        "{}",
        plan.stdout
    );
    let bundle = p.path().join("vault").join(format!("{a_key}.users.age"));
    assert!(age_plaintext(&bundle, &demo_identity()).contains(&format!("\n{worker_key} S")));

    let kept: Vec<_> = vault_bytes(&p)
        .into_iter()
        .filter(|(f, _)| {
            let name = f.file_name().unwrap().to_str().unwrap();
            !name.starts_with(&stray.public_key()) && name != format!("{a_key}.users.age")
        })
        .collect();
    let applied = p.apply();
    assert!(
        applied.stdout.contains("1 unused seed file removed"),
        "{}",
        applied.stdout
    );
    assert!(!stray_file.exists());
    // The deleted user's seed is gone from the bundle; the others stay.
    let plain = age_plaintext(&bundle, &demo_identity());
    assert!(!plain.contains(&worker_key), "{plain}");
    assert_eq!(plain.lines().count(), 2, "the header and U");
    let index =
        fs::read_to_string(p.path().join("vault").join(format!("{a_key}.users.keys"))).unwrap();
    assert!(!index.contains(&worker_key), "{index}");
    // Every other seed file and bundle is byte for byte as it was.
    let names = |v: &[(PathBuf, Vec<u8>)]| {
        v.iter()
            .map(|(f, b)| format!("{} {}", f.file_name().unwrap().to_str().unwrap(), b.len()))
            .collect::<Vec<_>>()
    };
    let now: Vec<_> = vault_bytes(&p)
        .into_iter()
        .filter(|(f, _)| f.file_name().unwrap().to_str().unwrap() != format!("{a_key}.users.age"))
        .collect();
    assert_eq!(names(&now), names(&kept));
    assert!(now == kept, "a file changed");
    let again = p.run_without_identity(&["plan"]).success().stdout;
    assert!(again.starts_with("No changes."), "{again}");
    p.creds("A/U");
}
