//! Bundles of user seeds: the documented plaintext, every line's shape
//! checked on opening and its seed against its key on use, and the probe that measured sealing per file against per
//! account.

use age::secrecy::{ExposeSecret, SecretString};

use super::*;

fn x25519() -> (SecretString, String) {
    let id = age::x25519::Identity::generate();
    (id.to_string(), id.to_public().to_string())
}

fn identities_from_key(secret: &SecretString) -> Identities {
    Identities::load(&IdentitySources {
        env_key: Some(secret.clone()),
        ..Default::default()
    })
    .unwrap()
}

fn users(n: usize) -> UserSeeds {
    let mut seeds = UserSeeds::new();
    for _ in 0..n {
        seeds.insert(generate(KeyKind::User));
    }
    seeds
}

/// The plaintext of an armoured age file, decrypted with the age crate
/// alone (what `age -d` does).
fn age_decrypt(armored: &[u8], secret: &SecretString) -> String {
    let id: age::x25519::Identity = secret.expose_secret().parse().unwrap();
    let d = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(armored)).unwrap();
    let mut r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut r, &mut out).unwrap();
    out
}

/// Seals `plain` as any age user would (to test what opening refuses).
fn seal_text(plain: &str, recipient: &str) -> Vec<u8> {
    let r: age::x25519::Recipient = recipient.parse().unwrap();
    let e = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let armor =
        age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor).unwrap();
    let mut w = e.wrap_output(armor).unwrap();
    std::io::Write::write_all(&mut w, plain.as_bytes()).unwrap();
    w.finish().unwrap().finish().unwrap()
}

#[test]
fn the_plaintext_is_the_documented_format_and_opens_back() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret, public) = x25519();
    let account = generate(KeyKind::Account).public_key();
    let seeds = users(3);
    let armored = seal_bundle(&account, &seeds, &Recipients::parse(&[&public]).unwrap()).unwrap();
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    let plain = age_decrypt(&armored, &secret);
    let mut lines = plain.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "# natsform user seeds of account {account}; one \"<USER_PUBLIC_KEY> <SEED>\" per line"
        )
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 3);
    let mut sorted = rest.clone();
    sorted.sort();
    assert_eq!(rest, sorted, "sorted by public key");
    for line in &rest {
        let (public, seed) = line.split_once(' ').unwrap();
        assert_eq!(
            nkeys::KeyPair::from_seed(seed).unwrap().public_key(),
            public
        );
        assert!(seeds.contains(public));
    }
    assert!(plain.ends_with('\n'));

    assert!(vault.write_bundle(&account, Some(&armored), &[]).unwrap());
    assert!(dir.path().join(format!("{account}.users.age")).is_file());
    let opened = vault
        .open_bundle(&account, &identities_from_key(&secret))
        .unwrap()
        .unwrap();
    assert_eq!(
        opened.keys().collect::<Vec<_>>(),
        seeds.keys().collect::<Vec<_>>()
    );
    // A user's seed through the bundle, and none for a key it lacks.
    let ids = identities_from_key(&secret);
    let first = seeds.keys().next().unwrap();
    assert_eq!(
        vault
            .get_user(first, &[&account], &ids)
            .unwrap()
            .public_key(),
        first
    );
    let other = generate(KeyKind::User).public_key();
    let e = vault.get_user(&other, &[&account], &ids).unwrap_err();
    assert!(matches!(e, KeysError::SeedMissing { .. }), "{e}");
    // No bundle at all: None, not an error.
    let none = generate(KeyKind::Account).public_key();
    assert!(vault.open_bundle(&none, &ids).unwrap().is_none());
    // Debug shows keys only.
    let debug = format!("{opened:?}");
    assert!(!crate::redact::contains_secret(&debug), "{debug}");
}

#[test]
fn a_duplicate_a_damaged_line_or_another_accounts_header_is_refused_on_opening() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret, public) = x25519();
    let ids = identities_from_key(&secret);
    let account = generate(KeyKind::Account).public_key();
    let header = format!(
        "# natsform user seeds of account {account}; one \"<USER_PUBLIC_KEY> <SEED>\" per line\n"
    );
    let a = generate(KeyKind::User);
    let b = generate(KeyKind::User);
    let seed = |kp: &nkeys::KeyPair| kp.seed().unwrap();
    // One character of a seed changed: its checksum no longer matches.
    let damaged = {
        let s = seed(&a);
        let c = if &s[20..21] == "A" { 'B' } else { 'A' };
        format!("{}{c}{}", &s[..20], &s[21..])
    };
    let (first, second) = if a.public_key() < b.public_key() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let cases = [
        (
            format!(
                "{header}{} {}\n{} {}\n",
                a.public_key(),
                seed(&a),
                a.public_key(),
                seed(&a)
            ),
            "listed twice",
            3,
        ),
        (
            // Out of order, then a key again: the later line is named.
            format!(
                "{header}{} {}\n{} {}\n{} {}\n",
                second.public_key(),
                seed(second),
                first.public_key(),
                seed(first),
                second.public_key(),
                seed(second)
            ),
            "listed twice",
            4,
        ),
        (
            format!(
                "# natsform user seeds of account {}; one \"<USER_PUBLIC_KEY> <SEED>\" per line\n{} {}\n",
                generate(KeyKind::Account).public_key(),
                a.public_key(),
                seed(&a)
            ),
            "another account than the one its name says",
            1,
        ),
        (format!("{} {}\n", a.public_key(), seed(&a)), "header line", 1),
        (
            format!("{header}{} {}\n", a.public_key(), "SUnotaseed"),
            "not a valid nkey seed",
            2,
        ),
        (
            format!("{header}{} {damaged}\n", a.public_key()),
            "not a valid nkey seed",
            2,
        ),
        (
            // A well-formed seed, but an account's.
            format!(
                "{header}{} {}\n",
                a.public_key(),
                generate(KeyKind::Account).seed().unwrap()
            ),
            "not a valid nkey seed of a user",
            2,
        ),
        (
            format!(
                "{header}{} {}\n",
                generate(KeyKind::Account).public_key(),
                seed(&a)
            ),
            "not a user public key",
            2,
        ),
        (format!("{header}{}\n", a.public_key()), "not `<USER_PUBLIC_KEY> <SEED>`", 2),
    ];
    for (plain, expected, line) in cases {
        vault
            .write_bundle(&account, Some(&seal_text(&plain, &public)), &[])
            .unwrap();
        let e = vault.open_bundle(&account, &ids).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(
            matches!(e, KeysError::BadBundle { line: l, .. } if l == line),
            "line {line}: {e:?}"
        );
        assert!(!crate::redact::contains_secret(&text), "{text}");
    }
}

/// A line holding another key's seed (well-formed) opens, and is refused
/// the moment its seed is used; carried over as it is, it keeps its bytes
/// and is refused all the same in the bundle it was carried into.
#[test]
fn check_on_use_a_line_holding_another_keys_seed_is_refused_when_its_seed_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret, public) = x25519();
    let ids = identities_from_key(&secret);
    let recipients = Recipients::parse(&[&public]).unwrap();
    let account = generate(KeyKind::Account).public_key();
    let header = format!(
        "# natsform user seeds of account {account}; one \"<USER_PUBLIC_KEY> <SEED>\" per line\n"
    );
    let a = generate(KeyKind::User);
    let b = generate(KeyKind::User);
    let good = generate(KeyKind::User);
    let mut lines = [
        format!("{} {}", a.public_key(), b.seed().unwrap()),
        format!("{} {}", good.public_key(), good.seed().unwrap()),
    ];
    lines.sort();
    let swapped_line = lines
        .iter()
        .position(|l| l.starts_with(&a.public_key()))
        .unwrap()
        + 2;
    let plain = format!("{header}{}\n", lines.join("\n"));
    vault
        .write_bundle(&account, Some(&seal_text(&plain, &public)), &[])
        .unwrap();
    let mut seeds = vault.open_bundle(&account, &ids).unwrap().unwrap();
    assert_eq!(seeds.len(), 2);
    let refused = |e: KeysError| {
        let text = e.to_string();
        assert!(text.contains("holds the seed of"), "{text}");
        assert!(
            matches!(e, KeysError::BadBundle { line, .. } if line == swapped_line),
            "{e:?}"
        );
        assert!(!crate::redact::contains_secret(&text), "{text}");
    };
    refused(seeds.get(&a.public_key()).unwrap().unwrap_err());
    refused(seeds.check_all().unwrap_err());
    assert_eq!(
        seeds.get(&good.public_key()).unwrap().unwrap().public_key(),
        good.public_key()
    );
    refused(
        vault
            .get_user(&a.public_key(), &[&account], &ids)
            .unwrap_err(),
    );
    // Carried over (as apply does when the account's users change) with a
    // new user: the line keeps its bytes, so it is refused again there.
    let newcomer = generate(KeyKind::User);
    let line = seeds.take_line(&a.public_key()).unwrap();
    assert_eq!(line.public_key(), a.public_key());
    assert!(!format!("{line:?}").contains(&b.seed().unwrap()));
    let mut target = UserSeeds::new();
    target.insert_line(line);
    target.insert(newcomer);
    let armored = seal_bundle(&account, &target, &recipients).unwrap();
    let plain = age_decrypt(&armored, &secret);
    assert!(
        plain.contains(&format!("{} {}\n", a.public_key(), b.seed().unwrap())),
        "the line is carried over as it was"
    );
    vault.write_bundle(&account, Some(&armored), &[]).unwrap();
    let mut reopened = vault.open_bundle(&account, &ids).unwrap().unwrap();
    assert!(reopened.check_all().is_err());
    let e = reopened.take(&a.public_key()).unwrap().unwrap_err();
    assert!(e.to_string().contains("holds the seed of"), "{e}");
    // Taken out (and refused), the rest checks.
    reopened.check_all().unwrap();
}

/// Lines taken out and put back, or re-sealed, keep their exact bytes.
#[test]
fn lines_carried_over_keep_their_bytes() {
    let (secret, public) = x25519();
    let recipients = Recipients::parse(&[&public]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let account = generate(KeyKind::Account).public_key();
    let seeds = users(5);
    let armored = seal_bundle(&account, &seeds, &recipients).unwrap();
    let before = age_decrypt(&armored, &secret);
    vault.write_bundle(&account, Some(&armored), &[]).unwrap();
    let ids = identities_from_key(&secret);
    let mut opened = vault.open_bundle(&account, &ids).unwrap().unwrap();
    opened.check_all().unwrap();
    let keys: Vec<String> = opened.keys().map(str::to_string).collect();
    let mut moved = UserSeeds::new();
    for k in &keys {
        moved.insert_line(opened.take_line(k).unwrap());
    }
    assert!(opened.is_empty());
    let again = age_decrypt(
        &seal_bundle(&account, &moved, &recipients).unwrap(),
        &secret,
    );
    assert_eq!(again, before);
    // Without one: that line alone is gone.
    let gone = moved.take_line(&keys[2]).unwrap();
    let without = age_decrypt(
        &seal_bundle(&account, &moved, &recipients).unwrap(),
        &secret,
    );
    let expected: String = before
        .lines()
        .filter(|l| !l.starts_with(gone.public_key()))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without, expected);
}

#[test]
fn a_link_as_bundle_is_refused_and_a_legacy_seed_file_is_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path().join("vault"));
    let (secret, public) = x25519();
    let ids = identities_from_key(&secret);
    let recipients = Recipients::parse(&[&public]).unwrap();
    let account = generate(KeyKind::Account).public_key();
    let user = generate(KeyKind::User);
    // A legacy per-user file, and a bundle without that user.
    vault.put(&user, &recipients).unwrap();
    let armored = seal_bundle(&account, &users(1), &recipients).unwrap();
    vault.write_bundle(&account, Some(&armored), &[]).unwrap();
    let got = vault
        .get_user(&user.public_key(), &[&account], &ids)
        .unwrap();
    assert_eq!(got.public_key(), user.public_key());
    // A link as bundle: never followed.
    let outside = dir.path().join("elsewhere.age");
    std::fs::write(&outside, &armored).unwrap();
    let link_account = generate(KeyKind::Account).public_key();
    std::os::unix::fs::symlink(&outside, vault.bundle_path(&link_account).unwrap()).unwrap();
    let e = vault.open_bundle(&link_account, &ids).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(vault
        .write_bundle(&link_account, Some(&armored), &[])
        .is_err());
    assert!(!vault.has_bundle(&link_account));
    // A bundle name must be an account key.
    assert!(vault.bundle_path(&user.public_key()).is_err());
}

/// The measurement behind bundles (issue 13 item 2), run by hand:
/// `cargo test --release --lib keys::tests_bundle::probe -- --ignored --nocapture`.
/// Seals 100,000 user seeds as 100,000 files and as 1,000 bundles of 100,
/// then reads every header back as `plan` does.
#[test]
#[ignore]
fn probe_sealing_per_seed_against_per_account() {
    use rayon::prelude::*;
    let n_accounts = 1_000;
    let per = 100;
    let (_, public) = x25519();
    let recipients = Recipients::parse(&[&public]).unwrap();
    let accounts: Vec<(String, UserSeeds)> = (0..n_accounts)
        .map(|_| (generate(KeyKind::Account).public_key(), users(per)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let files = Vault::new(dir.path().join("files"));
    let bundles = Vault::new(dir.path().join("bundles"));
    for (name, vault) in [("files", &files), ("bundles", &bundles)] {
        std::fs::create_dir_all(vault.dir()).unwrap();
        let t = std::time::Instant::now();
        let sealed: Vec<(PathBufOrKey, Vec<u8>)> = if name == "files" {
            accounts
                .par_iter()
                .flat_map_iter(|(_, seeds)| {
                    seeds.keys().map(|k| {
                        let kp = seeds.get(k).unwrap().unwrap();
                        let armored = crate::keys::vault::encrypt_seed_for_probe(&kp, &recipients);
                        (PathBufOrKey(vault.seed_path(k).unwrap()), armored)
                    })
                })
                .collect()
        } else {
            accounts
                .par_iter()
                .map(|(a, seeds)| {
                    (
                        PathBufOrKey(vault.bundle_path(a).unwrap()),
                        seal_bundle(a, seeds, &recipients).unwrap(),
                    )
                })
                .collect()
        };
        let seal = t.elapsed();
        let t = std::time::Instant::now();
        for (p, bytes) in &sealed {
            std::fs::write(&p.0, bytes).unwrap();
        }
        let write = t.elapsed();
        let bytes: usize = sealed.iter().map(|(_, b)| b.len()).sum();
        let t = std::time::Instant::now();
        let src = crate::source::WorkDir;
        let examined: usize = if name == "files" {
            vault
                .list_in(&src)
                .par_iter()
                .filter(|k| vault.examine_in(&src, k).sealed.is_some())
                .count()
        } else {
            vault
                .list_bundles_in(&src)
                .par_iter()
                .filter(|k| vault.examine_bundle_in(&src, k).sealed.is_some())
                .count()
        };
        let examine = t.elapsed();
        println!(
            "{name}: {} files, {bytes} bytes; seal {seal:?} (2 threads), write (no fsync) {write:?}, plan's header read {examine:?} ({examined} files)",
            sealed.len()
        );
    }
}

struct PathBufOrKey(std::path::PathBuf);

#[test]
fn an_index_lists_its_keys_sorted_once_each() {
    let account = generate(KeyKind::Account).public_key();
    let mut keys: Vec<String> = (0..4)
        .map(|_| generate(KeyKind::User).public_key())
        .collect();
    keys.sort();
    let text = index_text(&account, keys.iter().map(String::as_str));
    assert_eq!(parse_index(&account, text.as_bytes()).unwrap(), keys);
    // Out of order (edited by hand): read sorted all the same.
    let mut shuffled = keys.clone();
    shuffled.swap(0, 3);
    let text = index_text(&account, shuffled.iter().map(String::as_str));
    assert_eq!(parse_index(&account, text.as_bytes()).unwrap(), keys);
    // A key twice, next to each other or apart.
    for twice in [
        vec![&keys[0], &keys[1], &keys[1], &keys[2]],
        vec![&keys[2], &keys[0], &keys[1], &keys[2]],
    ] {
        let text = index_text(&account, twice.into_iter().map(String::as_str));
        assert_eq!(
            parse_index(&account, text.as_bytes()).unwrap_err(),
            "a key is listed twice"
        );
    }
    // Another account's index, a line that is no user key.
    let other = generate(KeyKind::Account).public_key();
    let text = index_text(&other, keys.iter().map(String::as_str));
    assert!(parse_index(&account, text.as_bytes())
        .unwrap_err()
        .contains("header"));
    let text = index_text(&account, [keys[0].as_str(), other.as_str()].into_iter());
    assert!(parse_index(&account, text.as_bytes())
        .unwrap_err()
        .contains("line 3 is not a user public key"));
}
