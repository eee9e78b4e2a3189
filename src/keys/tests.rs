//! Tests across the vault, identities and recipients; lock and kind tests
//! live in `tests_lock.rs` and `kind.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use age::secrecy::{ExposeSecret, SecretString};

use super::*;

/// Snapshot named `name` in `src/keys/snapshots/<name>.snap`, without the
/// crate/module prefix, so the snapshots stay valid when this module moves
/// to another crate.
pub(crate) fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// A fresh X25519 identity: (secret identity text, public recipient).
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

fn recipients(list: &[&str]) -> Recipients {
    Recipients::parse(list).unwrap()
}

/// Generates an unencrypted OpenSSH key pair with ssh-keygen; `None` (and the
/// calling test passes vacuously) when ssh-keygen is not installed.
fn ssh_keygen(dir: &Path, kind: &str, passphrase: &str) -> Option<(PathBuf, String)> {
    let path = dir.join(format!("id_{kind}"));
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", "test-only", "-f"])
        .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    let status = cmd.status().ok()?;
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    Some((path, public.trim().to_string()))
}

/// Replaces the temp dir in a message so snapshots are stable.
fn redact(msg: &str, dir: &Path) -> String {
    msg.replace(&dir.display().to_string(), "[TMP]")
}

fn every_byte_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(every_byte_under(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn vault_round_trips_every_kind_with_an_x25519_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path().join("vault"));
    let (secret, public) = x25519();
    let ids = identities_from_key(&secret);
    for kind in KeyKind::ALL {
        let kp = generate(kind);
        assert!(!vault.contains(&kp.public_key()));
        assert!(vault.put(&kp, &recipients(&[&public])).unwrap());
        assert!(vault.contains(&kp.public_key()));
        let back = vault.get(&kp.public_key(), &ids).unwrap();
        assert_eq!(back.public_key(), kp.public_key());
        assert!(back.seed().unwrap() == kp.seed().unwrap(), "seed differs");
    }
}

#[test]
fn vault_files_are_ascii_armored_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = generate(KeyKind::User);
    vault.put(&kp, &recipients(&[&x25519().1])).unwrap();
    let path = vault.seed_path(&kp.public_key()).unwrap();
    assert_eq!(path, dir.path().join(format!("{}.age", kp.public_key())));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn vault_round_trips_with_ssh_recipients() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "rsa"] {
        let Some((private, public)) = ssh_keygen(dir.path(), kind, "") else {
            return;
        };
        let vault = Vault::new(dir.path().join(format!("vault-{kind}")));
        let ids = Identities::load(&IdentitySources {
            paths: vec![private],
            ..Default::default()
        })
        .unwrap();
        let kp = generate(KeyKind::Account);
        assert!(vault.put(&kp, &recipients(&[&public])).unwrap());
        assert_eq!(
            vault.get(&kp.public_key(), &ids).unwrap().public_key(),
            kp.public_key()
        );
    }
}

#[test]
fn any_one_of_several_recipients_can_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret_a, public_a) = x25519();
    let (secret_b, public_b) = x25519();
    let kp = generate(KeyKind::Operator);
    vault
        .put(&kp, &recipients(&[&public_a, &public_b]))
        .unwrap();
    for secret in [secret_a, secret_b] {
        vault
            .get(&kp.public_key(), &identities_from_key(&secret))
            .unwrap();
    }
}

#[test]
fn decrypting_with_the_wrong_identity_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = KeyPair::new_from_raw(nkeys::KeyPairType::Account, [7; 32]).unwrap();
    vault.put(&kp, &recipients(&[&x25519().1])).unwrap();
    let (other, _) = x25519();
    let err = vault
        .get(&kp.public_key(), &identities_from_key(&other))
        .unwrap_err();
    assert!(matches!(err, KeysError::WrongIdentity { .. }), "{err:?}");
    crate::keys::tests::snapshot("wrong_identity", &redact(&err.to_string(), dir.path()));
}

#[test]
fn put_twice_does_not_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = generate(KeyKind::User);
    let path = vault.seed_path(&kp.public_key()).unwrap();
    assert!(vault.put(&kp, &recipients(&[&x25519().1])).unwrap());
    let before = (
        std::fs::read(&path).unwrap(),
        std::fs::metadata(&path).unwrap().modified().unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Even with different recipients, the stored file stays as it is.
    assert!(!vault.put(&kp, &recipients(&[&x25519().1])).unwrap());
    let after = (
        std::fs::read(&path).unwrap(),
        std::fs::metadata(&path).unwrap().modified().unwrap(),
    );
    assert_eq!(before, after);
}

#[test]
fn put_never_overwrites_an_existing_file_even_if_it_is_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = generate(KeyKind::Account);
    let path = vault.seed_path(&kp.public_key()).unwrap();
    std::fs::write(&path, b"not age").unwrap();
    assert!(!vault.put(&kp, &recipients(&[&x25519().1])).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"not age");
}

#[test]
fn a_vault_file_swapped_with_another_keys_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret, public) = x25519();
    let a = generate(KeyKind::Account);
    let b = generate(KeyKind::Account);
    vault.put(&a, &recipients(&[&public])).unwrap();
    vault.put(&b, &recipients(&[&public])).unwrap();
    let path_a = vault.seed_path(&a.public_key()).unwrap();
    std::fs::copy(vault.seed_path(&b.public_key()).unwrap(), &path_a).unwrap();
    let err = vault
        .get(&a.public_key(), &identities_from_key(&secret))
        .unwrap_err();
    match &err {
        KeysError::SeedMismatch {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, &path_a);
            assert_eq!(expected, &a.public_key());
            assert_eq!(found, &b.public_key());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("holds a seed for a different key"));
}

#[test]
fn a_damaged_vault_file_is_reported_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = generate(KeyKind::User);
    std::fs::write(vault.seed_path(&kp.public_key()).unwrap(), "garbage\n").unwrap();
    let err = vault
        .get(&kp.public_key(), &identities_from_key(&x25519().0))
        .unwrap_err();
    assert!(matches!(err, KeysError::CorruptVaultFile { .. }), "{err:?}");
}

#[test]
fn a_missing_seed_says_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = KeyPair::new_from_raw(nkeys::KeyPairType::User, [9; 32]).unwrap();
    let err = vault
        .get(&kp.public_key(), &identities_from_key(&x25519().0))
        .unwrap_err();
    crate::keys::tests::snapshot("seed_missing", &redact(&err.to_string(), dir.path()));
}

#[test]
fn the_plaintext_seed_never_reaches_the_vault_directory_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret, public) = x25519();
    let keys: Vec<KeyPair> = KeyKind::ALL.into_iter().map(generate).collect();
    for kp in &keys {
        vault.put(kp, &recipients(&[&public])).unwrap();
    }
    // Swap two files to provoke an error that involves a decrypted seed.
    std::fs::copy(
        vault.seed_path(&keys[1].public_key()).unwrap(),
        vault.seed_path(&keys[0].public_key()).unwrap(),
    )
    .unwrap();
    let err = vault
        .get(&keys[0].public_key(), &identities_from_key(&secret))
        .unwrap_err();
    let on_disk = every_byte_under(dir.path());
    for kp in &keys {
        let seed = kp.seed().unwrap();
        assert!(!contains(&on_disk, seed.as_bytes()), "seed found on disk");
        // Also the seed without its two-letter prefix, in case of re-encoding.
        assert!(
            !contains(&on_disk, &seed.as_bytes()[2..]),
            "seed body found on disk"
        );
        assert!(!format!("{err} {err:?} {kp:?}").contains(&seed[2..]));
    }
}

#[test]
fn storing_with_no_recipients_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let kp = generate(KeyKind::User);
    let err = vault.put(&kp, &recipients(&[])).unwrap_err();
    assert!(matches!(err, KeysError::NoRecipients { .. }), "{err:?}");
    assert!(!vault.contains(&kp.public_key()));
}

#[test]
fn a_public_only_key_pair_cannot_be_stored() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let public = KeyPair::from_public_key(&generate(KeyKind::User).public_key()).unwrap();
    let err = vault.put(&public, &recipients(&[&x25519().1])).unwrap_err();
    assert!(matches!(err, KeysError::Encrypt { .. }), "{err:?}");
}

#[test]
fn malformed_public_keys_never_name_a_path() {
    let vault = Vault::new("/vault");
    for bad in [
        "../../etc/passwd",
        "",
        "OABC",
        &generate(KeyKind::User).public_key()[1..],
    ] {
        assert!(vault.seed_path(bad).is_err(), "{bad}");
        assert!(!vault.contains(bad));
    }
}

#[test]
fn list_returns_sorted_public_keys_and_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path().join("v"));
    assert!(
        vault.list().unwrap().is_empty(),
        "a missing dir is an empty vault"
    );
    let public = x25519().1;
    let mut expected: Vec<String> = (0..4)
        .map(|_| {
            let kp = generate(KeyKind::User);
            vault.put(&kp, &recipients(&[&public])).unwrap();
            kp.public_key()
        })
        .collect();
    expected.sort();
    std::fs::write(dir.path().join("v/README.md"), "x").unwrap();
    std::fs::write(dir.path().join("v/NOTAKEY.age"), "x").unwrap();
    assert_eq!(vault.list().unwrap(), expected);
}

// ---- identities ----

#[test]
fn no_identity_lists_every_place_looked_at_in_order() {
    let err = Identities::load(&IdentitySources {
        default_files: vec![
            "/nonexistent-home/.config/natsform/identity.txt".into(),
            "/nonexistent-home/.config/sops/age/keys.txt".into(),
        ],
        ..Default::default()
    })
    .unwrap_err();
    crate::keys::tests::snapshot("no_identity", &err.to_string());
    // Without a home directory there is no default file to name.
    let err = Identities::load(&IdentitySources::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("neither $XDG_CONFIG_HOME nor $HOME"),
        "{err}"
    );
}

#[test]
fn empty_environment_values_count_as_unset() {
    let sources = IdentitySources {
        paths: vec![],
        env_path: Some("".into()),
        env_key: Some(SecretString::from("  \n".to_string())),
        ..Default::default()
    };
    assert!(matches!(
        Identities::load(&sources),
        Err(KeysError::NoIdentity { .. })
    ));
}

#[test]
fn explicit_paths_beat_the_identity_file_variable_which_beats_the_key_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (flag_secret, _) = x25519();
    let (file_secret, _) = x25519();
    let (key_secret, _) = x25519();
    let flag_path = dir.path().join("flag.txt");
    let env_path = dir.path().join("env.txt");
    std::fs::write(&flag_path, flag_secret.expose_secret()).unwrap();
    std::fs::write(&env_path, file_secret.expose_secret()).unwrap();
    let all = IdentitySources {
        paths: vec![flag_path.clone()],
        env_path: Some(env_path.clone().into()),
        env_key: Some(key_secret.clone()),
        ..Default::default()
    };
    let origins = |s: &IdentitySources| {
        redact(
            &Identities::load(s).unwrap().origins().join(";"),
            dir.path(),
        )
    };
    assert_eq!(origins(&all), "identity file [TMP]/flag.txt (--identity)");
    let no_flag = IdentitySources {
        paths: vec![],
        ..all
    };
    assert_eq!(
        origins(&no_flag),
        "identity file [TMP]/env.txt (NATSFORM_AGE_IDENTITY)"
    );
    let key_only = IdentitySources {
        env_path: None,
        ..no_flag
    };
    assert_eq!(origins(&key_only), "NATSFORM_AGE_KEY");
}

#[test]
fn identity_files_may_hold_comments_and_several_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (a, public_a) = x25519();
    let (b, public_b) = x25519();
    let path = dir.path().join("keys.txt");
    let text = format!(
        "# created: today\n# public key: {public_a}\n{}\n\n{}\r\n",
        a.expose_secret(),
        b.expose_secret()
    );
    std::fs::write(&path, text).unwrap();
    let ids = Identities::load(&IdentitySources {
        paths: vec![path.clone(), path],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ids.len(), 4);
    let vault = Vault::new(dir.path().join("v"));
    let kp = generate(KeyKind::User);
    vault.put(&kp, &recipients(&[&public_b])).unwrap();
    vault.get(&kp.public_key(), &ids).unwrap();
}

#[test]
fn a_bad_identity_line_is_named_by_number_not_content() {
    let (secret, _) = x25519();
    // A secret with one character dropped: must never be echoed.
    let broken = &secret.expose_secret()[..secret.expose_secret().len() - 1];
    let err = Identities::load(&IdentitySources {
        env_key: Some(SecretString::from(format!("# ok\n{broken}\n"))),
        ..Default::default()
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains(&broken[16..]));
    assert!(!format!("{err:?}").contains(&broken[16..]));
    crate::keys::tests::snapshot("bad_identity_line", &msg);
}

#[test]
fn a_public_key_given_as_identity_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id.pub");
    std::fs::write(&path, format!("{}\n", x25519().1)).unwrap();
    let err = Identities::load(&IdentitySources {
        paths: vec![path],
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("is a public key"), "{err}");
}

#[test]
fn passphrase_protected_ssh_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((private, _)) = ssh_keygen(dir.path(), "ed25519", "hunter22") else {
        return;
    };
    let err = Identities::load(&IdentitySources {
        paths: vec![private],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, KeysError::IdentityUnsupported { .. }),
        "{err:?}"
    );
}

#[test]
fn a_missing_identity_file_is_named() {
    let err = Identities::load(&IdentitySources {
        env_path: Some("/nonexistent/key.txt".into()),
        ..Default::default()
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "cannot read age identity file /nonexistent/key.txt (NATSFORM_AGE_IDENTITY)"
        ),
        "{msg}"
    );
}

#[test]
fn debug_output_of_identities_shows_no_secrets() {
    let (secret, _) = x25519();
    let sources = IdentitySources {
        env_key: Some(secret.clone()),
        ..Default::default()
    };
    let ids = Identities::load(&sources).unwrap();
    let shown = format!("{sources:?} {ids:?}");
    assert!(!shown.contains(&secret.expose_secret()[16..]), "{shown}");
}

#[test]
fn the_age_header_shows_who_a_seed_is_sealed_to() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = x25519();
    let (_, b) = x25519();
    let mut list = vec![a.clone(), b.clone()];
    // SSH stanzas name their key by tag: the shape computed from the
    // recipient text must match what age writes.
    for kind in ["ed25519", "rsa"] {
        if let Some((_, public)) = ssh_keygen(dir.path(), kind, "") {
            list.push(public);
        }
    }
    let texts: Vec<&str> = list.iter().map(String::as_str).collect();
    let declared = recipients(&texts);
    let vault = Vault::new(dir.path().join("vault"));
    let kp = generate(KeyKind::User);
    vault.put(&kp, &declared).unwrap();
    let bytes = std::fs::read(vault.seed_path(&kp.public_key()).unwrap()).unwrap();
    let shape = vault::sealed_to(&bytes).unwrap();
    assert_eq!(shape, declared.sealed_shape());
    assert_eq!(shape.x25519, 2);
    assert!(!shape.exceeds(&declared.sealed_shape()));
    // One fewer X25519 recipient: the file exceeds it.
    let fewer: Vec<&str> = texts.iter().copied().filter(|t| *t != b).collect();
    assert!(shape.exceeds(&recipients(&fewer).sealed_shape()));
    // More recipients: differs, but does not exceed.
    let (_, c) = x25519();
    let mut more = texts.clone();
    more.push(&c);
    let wider = recipients(&more).sealed_shape();
    assert_ne!(shape, wider);
    assert!(!shape.exceeds(&wider));
    // Not an age file: no shape.
    assert_eq!(vault::sealed_to(b"not age"), None);
    let _ = a;
}

/// The header is read a chunk at a time up to its end: a header longer
/// than one chunk (60 recipients) and a bundle of 2,000 users both give
/// the shape age wrote, and a header cut short gives none.
#[test]
fn the_age_header_is_read_to_its_end_and_no_further() {
    let many: Vec<String> = (0..60).map(|_| x25519().1).collect();
    let texts: Vec<&str> = many.iter().map(String::as_str).collect();
    let declared = recipients(&texts);
    let mut users = UserSeeds::new();
    for _ in 0..2000 {
        users.insert(generate(KeyKind::User));
    }
    let account = generate(KeyKind::Account).public_key();
    let bytes = crate::keys::seal_bundle(&account, &users, &declared).unwrap();
    assert!(bytes.len() > 200_000, "{}", bytes.len());
    let shape = vault::sealed_to(&bytes).unwrap();
    assert_eq!(shape.x25519, 60);
    assert_eq!(shape, declared.sealed_shape());
    // The armour of the header alone, cut before its `---` line.
    let text = std::str::from_utf8(&bytes).unwrap();
    let cut: String = text.lines().take(30).map(|l| format!("{l}\n")).collect();
    assert_eq!(vault::sealed_to(cut.as_bytes()), None);
}

#[test]
fn resealing_keeps_the_seed_and_changes_who_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(dir.path());
    let (secret_a, public_a) = x25519();
    let (secret_b, public_b) = x25519();
    let kp = generate(KeyKind::Account);
    vault.put(&kp, &recipients(&[&public_a])).unwrap();
    let again = vault
        .sealed_again(
            &kp.public_key(),
            &identities_from_key(&secret_a),
            &recipients(&[&public_b]),
        )
        .unwrap();
    assert!(vault.replace(&kp.public_key(), &again).unwrap());
    assert!(
        !vault.replace(&kp.public_key(), &again).unwrap(),
        "same bytes: not rewritten"
    );
    assert_eq!(
        vault
            .get(&kp.public_key(), &identities_from_key(&secret_b))
            .unwrap()
            .seed()
            .unwrap(),
        kp.seed().unwrap()
    );
    assert!(vault
        .get(&kp.public_key(), &identities_from_key(&secret_a))
        .is_err());
    assert!(vault.remove(&kp.public_key()).unwrap());
    assert!(!vault.remove(&kp.public_key()).unwrap());
}
