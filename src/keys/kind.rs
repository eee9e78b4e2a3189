//! The three kinds of nkey natsform manages, key generation and public-key
//! validation.

use std::fmt;

use nkeys::KeyPair;

/// The kind of an nkey in the trust tree. Signing keys have the kind of
/// their owner (operator signing keys are `Operator`, account signing keys
/// are `Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyKind {
    /// Operator identity and operator signing keys (`O…`).
    Operator,
    /// Account identity and account signing keys (`A…`).
    Account,
    /// User identity (`U…`).
    User,
}

impl KeyKind {
    /// All kinds, in trust-tree order.
    pub const ALL: [KeyKind; 3] = [KeyKind::Operator, KeyKind::Account, KeyKind::User];

    /// First character of this kind's public key (`O`, `A`, `U`); its seed
    /// starts with `S` followed by the same letter.
    pub fn prefix(self) -> char {
        match self {
            KeyKind::Operator => 'O',
            KeyKind::Account => 'A',
            KeyKind::User => 'U',
        }
    }

    /// Lower-case name for messages ("operator", "account", "user").
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Operator => "operator",
            KeyKind::Account => "account",
            KeyKind::User => "user",
        }
    }

    fn from_prefix(c: char) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.prefix() == c)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Generates a fresh random key pair of `kind` (OS randomness via nkeys).
pub fn generate(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::Operator => KeyPair::new_operator(),
        KeyKind::Account => KeyPair::new_account(),
        KeyKind::User => KeyPair::new_user(),
    }
}

/// The kind of a well-formed operator, account or user public key; `None`
/// for anything else (bad length, bad checksum, other nkey kinds, seeds).
///
/// Strict: surrounding whitespace makes the key invalid. Callers reading
/// foreign files should trim first.
pub fn kind_of_public_key(s: &str) -> Option<KeyKind> {
    // nkeys validates length, base32, CRC and that the prefix byte is a
    // public-key prefix; the first character then names the kind.
    nkeys::from_public_key(s).ok()?;
    KeyKind::from_prefix(s.chars().next()?)
}

/// Whether `s` is a well-formed public key of exactly `kind`.
pub fn is_valid_public_key(kind: KeyKind, s: &str) -> bool {
    kind_of_public_key(s) == Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_prefix_of_their_kind() {
        for kind in KeyKind::ALL {
            let kp = generate(kind);
            let public = kp.public_key();
            assert_eq!(public.len(), 56);
            assert!(public.starts_with(kind.prefix()), "{kind}: {public}");
            let seed = zeroize::Zeroizing::new(kp.seed().unwrap());
            assert!(seed.starts_with(&format!("S{}", kind.prefix())));
            assert_eq!(kind_of_public_key(&public), Some(kind));
            assert_eq!(kind_of_public_key(&kp.public_key()), Some(kind));
            assert!(is_valid_public_key(kind, &public));
        }
    }

    #[test]
    fn a_key_of_another_kind_is_not_valid_for_this_kind() {
        let account = generate(KeyKind::Account).public_key();
        assert!(!is_valid_public_key(KeyKind::User, &account));
        assert!(!is_valid_public_key(KeyKind::Operator, &account));
    }

    #[test]
    fn seeds_server_keys_and_whitespace_are_not_public_keys() {
        let kp = generate(KeyKind::User);
        let seed = zeroize::Zeroizing::new(kp.seed().unwrap());
        assert_eq!(kind_of_public_key(&seed), None);
        assert_eq!(kind_of_public_key(&format!("{}\n", kp.public_key())), None);
        assert_eq!(
            kind_of_public_key(&KeyPair::new_server().public_key()),
            None
        );
        assert_eq!(kind_of_public_key(""), None);
    }

    #[test]
    fn a_corrupted_character_fails_the_checksum() {
        let public = generate(KeyKind::Operator).public_key();
        let mut chars: Vec<char> = public.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        let bad: String = chars.into_iter().collect();
        assert_eq!(kind_of_public_key(&bad), None);
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            let _ = kind_of_public_key(&s);
        }
    }
}
