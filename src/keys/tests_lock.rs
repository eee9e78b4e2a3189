//! Lock file tests.

use std::path::Path;

use nkeys::KeyPairType;
use proptest::prelude::*;

use super::lock::{parse_canonical, LockFile};
use super::*;

/// Deterministic, well-formed public keys so snapshots are stable.
fn key(kind: KeyPairType, n: u8) -> String {
    KeyPair::new_from_raw(kind, [n; 32]).unwrap().public_key()
}

fn sample() -> Lock {
    let mut lock = Lock::new();
    // Inserted out of order on purpose: the output must be sorted anyway.
    lock.insert("user.O2/A/U#v1", key(KeyPairType::User, 5))
        .unwrap();
    lock.insert("operator.O2#v1", key(KeyPairType::Operator, 1))
        .unwrap();
    lock.insert("signing_key.O2/A/service#v1", key(KeyPairType::Account, 4))
        .unwrap();
    lock.insert("account.O2/A#v1", key(KeyPairType::Account, 3))
        .unwrap();
    lock.insert("signing_key.O2/ops#v1", key(KeyPairType::Operator, 2))
        .unwrap();
    lock
}

#[test]
fn the_lock_text_is_sorted_and_has_a_no_secrets_header() {
    crate::keys::tests::snapshot("lock_text", &sample().to_string());
}

#[test]
fn a_lock_round_trips_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(crate::workspace::LOCK_FILE);
    assert!(sample().save(&path).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = Lock::load(&path).unwrap();
    assert_eq!(loaded, sample());
    assert_eq!(loaded.to_string(), text);
    assert_eq!(
        loaded.get("operator.O2#v1"),
        Some(key(KeyPairType::Operator, 1).as_str())
    );
    assert_eq!(loaded.kind("account.O2/A#v1"), Some(KeyKind::Account));
}

#[test]
fn saving_an_unchanged_lock_does_not_touch_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(crate::workspace::LOCK_FILE);
    assert!(sample().save(&path).unwrap());
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!Lock::load(&path).unwrap().save(&path).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}

#[test]
fn a_missing_lock_file_is_an_empty_lock() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Lock::load(&dir.path().join("nope.lock"))
        .unwrap()
        .is_empty());
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let text = "version = 1\n\n[keys]\n\"account.O2/A#v1\" = \n";
    let err = Lock::parse(text, Path::new("natsform.lock")).unwrap_err();
    crate::keys::tests::snapshot("lock_syntax_error", &err.to_string());
}

#[test]
fn a_malformed_public_key_names_its_address() {
    let text = format!(
        "version = 1\n[keys]\n\"account.O2/A#v1\" = \"{}\"\n\"user.O2/A/U#v1\" = \"UNOTAKEY\"\n",
        key(KeyPairType::Account, 3)
    );
    let err = Lock::parse(&text, Path::new("natsform.lock")).unwrap_err();
    crate::keys::tests::snapshot("lock_bad_key", &err.to_string());
}

#[test]
fn a_seed_in_the_lock_is_rejected_without_being_echoed() {
    let seed = generate(KeyKind::User).seed().unwrap();
    let text = format!("version = 1\n[keys]\n\"user.O2/A/U#v1\" = \"{seed}\"\n");
    let err = Lock::parse(&text, Path::new("natsform.lock")).unwrap_err();
    assert!(!err.to_string().contains(&seed[1..]), "{err}");
}

#[test]
fn a_newer_lock_version_is_reported_as_such() {
    let err = Lock::parse("version = 2\nnew_table = {}\n", Path::new("x.lock")).unwrap_err();
    assert!(
        matches!(err, KeysError::LockVersion { found: 2, .. }),
        "{err:?}"
    );
    let err = Lock::parse("[keys]\n", Path::new("x.lock")).unwrap_err();
    assert!(err.to_string().contains("missing `version = 1`"), "{err}");
}

#[test]
fn insert_rejects_malformed_keys_and_changes_nothing() {
    let mut lock = sample();
    assert!(lock.insert("operator.O2#v1", "nope").is_err());
    assert_eq!(lock, sample());
    assert_eq!(
        lock.remove("operator.O2#v1"),
        Some(key(KeyPairType::Operator, 1))
    );
    assert_eq!(lock.len(), 4);
}

/// What the TOML parser reads from `text` as a lock file, if anything.
fn toml_reads(text: &str) -> Option<LockFile> {
    toml::from_str::<LockFile>(text).ok()
}

fn same(a: &LockFile, b: &LockFile) -> bool {
    a == b
}

/// The line-by-line reading takes natsform's own lock text, and gives what
/// the TOML parser gives; a text it does not take is left to the parser.
#[test]
fn the_canonical_lock_is_read_without_toml_as_toml_reads_it() {
    let text = sample().to_string();
    let fast = parse_canonical(&text).expect("natsform's own text");
    assert!(same(&fast, &toml_reads(&text).unwrap()));
    assert_eq!(Lock::parse(&text, Path::new("p.lock")).unwrap(), sample());
    let empty = Lock::new().to_string();
    assert!(same(
        &parse_canonical(&empty).unwrap(),
        &toml_reads(&empty).unwrap()
    ));
    // Not taken (the TOML parser decides): escapes, bare keys, other
    // spacing, CRLF, comments, blank or trailing lines, order, duplicates,
    // another version, a revocation record.
    let line = "\"account.O2/A#v1\" = ";
    for changed in [
        text.replacen(line, "\"account.O2\\u002fA#v1\" = ", 1),
        text.replacen(line, "'account.O2/A#v1' = ", 1),
        text.replacen(line, "\"account.O2/A#v1\"= ", 1),
        text.replace('\n', "\r\n"),
        format!("{text}# end\n"),
        format!("{text}\n"),
        text.trim_end().to_string(),
        text.replacen("version = 1", "version = 2", 1),
        format!("{text}\n[revocations.\"account.O2/A\"]\n\"*\" = 1\n"),
    ] {
        assert!(parse_canonical(&changed).is_none(), "{changed}");
    }
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    lines.swap(n - 1, n - 2);
    assert!(parse_canonical(&(lines.join("\n") + "\n")).is_none());
    lines.swap(n - 1, n - 2);
    lines[n - 1] = lines[n - 2];
    assert!(parse_canonical(&(lines.join("\n") + "\n")).is_none());
}

proptest! {
    /// On any text near a canonical lock, the line-by-line reading either
    /// declines or agrees with the TOML parser.
    #[test]
    fn the_canonical_reading_never_disagrees_with_toml(
        addresses in proptest::collection::vec("[ -~]{0,16}", 0..6),
        at in 0usize..400,
        insert in "[ -~\r\n\\\"']{0,3}",
    ) {
        let mut lock = Lock::new();
        for (i, a) in addresses.iter().enumerate() {
            lock.insert(a.clone(), key(KeyPairType::User, i as u8)).unwrap();
        }
        let mut text = lock.to_string();
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &insert);
        if let Some(fast) = parse_canonical(&text) {
            let slow = toml_reads(&text);
            prop_assert!(slow.as_ref().is_some_and(|s| same(&fast, s)), "{text:?}");
        }
    }

    #[test]
    fn any_addresses_round_trip(addresses in proptest::collection::vec(".{0,24}", 0..8)) {
        let mut lock = Lock::new();
        for (i, a) in addresses.iter().enumerate() {
            lock.insert(a.clone(), key(KeyPairType::User, i as u8)).unwrap();
        }
        let text = lock.to_string();
        let back = Lock::parse(&text, Path::new("p.lock")).unwrap();
        prop_assert_eq!(&back, &lock);
        prop_assert_eq!(back.to_string(), text);
    }
}

#[test]
fn an_address_bound_to_a_key_of_another_kind_is_refused() {
    let cases = [
        (
            "user.O2/A/U#v1",
            key(KeyPairType::Account, 3),
            "an account key, but a user address needs a user key (U…)",
        ),
        (
            "account.O2/A#v1",
            key(KeyPairType::User, 5),
            "a user key, but an account address needs an account key (A…)",
        ),
        (
            "operator.O2#v1",
            key(KeyPairType::Account, 3),
            "an account key, but an operator address needs an operator key (O…)",
        ),
        (
            "signing_key.O2#ops",
            key(KeyPairType::Account, 3),
            "an account key, but an operator address needs an operator key (O…)",
        ),
        (
            "signing_key.O2/A/svc#v1",
            key(KeyPairType::Operator, 1),
            "an operator key, but an account address needs an account key (A…)",
        ),
    ];
    for (address, public, expected) in cases {
        let text = format!("version = 1\n[keys]\n\"{address}\" = \"{public}\"\n");
        let e = Lock::parse(&text, Path::new("natsform.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{address}: {e}");
        assert!(
            e.contains(&format!("delete the line of `{address}`")),
            "{e}"
        );
    }
    // The right kinds, and names holding `.` or `#`, load.
    let text = format!(
        "version = 1\n[keys]\n\"user.O2/A/x.y#z#v1\" = \"{}\"\n\"signing_key.O2#ops\" = \"{}\"\n\"signing_key.O2/A/svc#v1\" = \"{}\"\n",
        key(KeyPairType::User, 5),
        key(KeyPairType::Operator, 1),
        key(KeyPairType::Account, 3),
    );
    Lock::parse(&text, Path::new("natsform.lock")).unwrap();
}

#[test]
fn a_seed_as_an_address_is_refused_without_being_echoed() {
    let seed = KeyPair::new_from_raw(KeyPairType::User, [9; 32])
        .unwrap()
        .seed()
        .unwrap();
    let user = key(KeyPairType::User, 5);
    for text in [
        format!("version = 1\n[keys]\n\"{seed}\" = \"{user}\"\n"),
        format!("version = 1\n[keys]\n\"user.O/A/{seed}#v1\" = \"{user}\"\n"),
        format!("version = 1\n[revocations.{seed}]\n{user} = 1\n"),
    ] {
        let e = Lock::parse(&text, Path::new("natsform.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("looks like a seed (not shown)"), "{e}");
        assert!(!e.contains(&seed[..20]), "{e}");
    }
}

/// The record of deleted accounts: written sorted, read back the same, and
/// a lock without it is the same lock (no rewrite).
#[test]
fn the_deleted_accounts_record_round_trips_sorted() {
    let mut lock = sample();
    let mut deleted = DeletedAccounts::new();
    deleted
        .entry("account.O2/Gone".into())
        .or_default()
        .extend([key(KeyPairType::Account, 9), key(KeyPairType::Account, 8)]);
    deleted
        .entry("account.O2/Back".into())
        .or_default()
        .insert(key(KeyPairType::Account, 7));
    // A key the lock binds again is not deleted, and an empty entry goes.
    deleted
        .entry("account.O2/A".into())
        .or_default()
        .insert(key(KeyPairType::Account, 3));
    lock.set_deleted_accounts(deleted);
    assert_eq!(lock.deleted_accounts().len(), 2);
    let text = lock.to_string();
    let back = text.find("\"account.O2/Back\"").unwrap();
    let gone = text.find("\"account.O2/Gone\"").unwrap();
    assert!(back < gone, "{text}");
    assert!(
        text.find(&key(KeyPairType::Account, 8)).unwrap()
            < text.find(&key(KeyPairType::Account, 9)).unwrap()
    );
    let parsed = Lock::parse(&text, Path::new("natsform.lock")).unwrap();
    assert_eq!(parsed, lock);
    assert_eq!(parsed.to_string(), text);
    // Without deletions the text is exactly what it was before the record
    // existed.
    assert!(!sample().to_string().contains("deleted_accounts"));
}

#[test]
fn a_hand_edited_deleted_accounts_record_is_refused() {
    let acc = key(KeyPairType::Account, 9);
    let bound = key(KeyPairType::Account, 3);
    let user = key(KeyPairType::User, 5);
    let seed = KeyPair::new_from_raw(KeyPairType::Account, [9; 32])
        .unwrap()
        .seed()
        .unwrap();
    let keys = format!("[keys]\n\"account.O2/A#v1\" = \"{bound}\"\n");
    let cases = [
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"user.O2/A/U\" = [\"{acc}\"]\n"),
            "by account address",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/A#v1\" = [\"{acc}\"]\n"),
            "by account address",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/X\" = [\"{user}\"]\n"),
            "not an nkey public key",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/X\" = [\"{seed}\"]\n"),
            "looks like a seed; not shown",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/X\" = [\"{acc}\"]\n\"account.O2/Y\" = [\"{acc}\"]\n"),
            "under both `account.O2/X` and `account.O2/Y`",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/X\" = [\"{bound}\"]\n"),
            "is bound to `account.O2/A#v1`",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"{seed}\" = [\"{acc}\"]\n"),
            "looks like a seed (not shown)",
        ),
        (
            format!("version = 1\n{keys}[deleted_accounts]\n\"account.O2/X\" = \"{acc}\"\n"),
            "invalid type",
        ),
    ];
    for (text, expected) in cases {
        let e = Lock::parse(&text, Path::new("natsform.lock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{expected:?} not in {e}");
        assert!(!e.contains(&seed[..20]), "{e}");
    }
}
