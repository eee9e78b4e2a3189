//! Which kind of nkey a public key string is.
//!
//! nkeys-rs maps unknown prefix bytes to `KeyPairType::Operator`, so this
//! module decides the kind from the decoded prefix byte itself.

use std::fmt;

/// The nkey kinds that appear in NATS JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `O…`
    Operator,
    /// `A…`
    Account,
    /// `U…`
    User,
    /// `N…` (servers; auth-callout requests are issued by server keys)
    Server,
    /// `X…` (x25519 curve keys, used as auth-callout `xkey`)
    Curve,
}

impl KeyKind {
    /// The first character of a public key of this kind.
    pub fn letter(self) -> char {
        match self {
            KeyKind::Operator => 'O',
            KeyKind::Account => 'A',
            KeyKind::User => 'U',
            KeyKind::Server => 'N',
            KeyKind::Curve => 'X',
        }
    }

    fn prefix_byte(self) -> u8 {
        match self {
            KeyKind::Operator => 14 << 3,
            KeyKind::Account => 0,
            KeyKind::User => 20 << 3,
            KeyKind::Server => 13 << 3,
            KeyKind::Curve => 23 << 3,
        }
    }

    /// Describes a list of kinds for messages, e.g. `"O or A"`.
    pub fn describe(kinds: &[KeyKind]) -> String {
        kinds
            .iter()
            .map(|k| k.letter().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            KeyKind::Operator => "an operator",
            KeyKind::Account => "an account",
            KeyKind::User => "a user",
            KeyKind::Server => "a server",
            KeyKind::Curve => "a curve",
        };
        f.write_str(name)
    }
}

/// The kind of a well-formed public nkey (length, base32, CRC and prefix
/// all checked), or `None` for anything else, including seeds.
pub fn public_key_kind(key: &str) -> Option<KeyKind> {
    let (prefix, _) = nkeys::from_public_key(key).ok()?;
    [
        KeyKind::Operator,
        KeyKind::Account,
        KeyKind::User,
        KeyKind::Server,
        KeyKind::Curve,
    ]
    .into_iter()
    .find(|k| k.prefix_byte() == prefix)
}

/// True when `key` is a well-formed public key of `kind`, like Go's
/// `nkeys.IsValidPublic{Operator,Account,User}Key`.
pub fn is_public_key(key: &str, kind: KeyKind) -> bool {
    public_key_kind(key) == Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_from_the_prefix_byte() {
        let op = nkeys::KeyPair::new_operator().public_key();
        let acc = nkeys::KeyPair::new_account().public_key();
        let usr = nkeys::KeyPair::new_user().public_key();
        assert_eq!(public_key_kind(&op), Some(KeyKind::Operator));
        assert_eq!(public_key_kind(&acc), Some(KeyKind::Account));
        assert_eq!(public_key_kind(&usr), Some(KeyKind::User));
        assert!(!is_public_key(&acc, KeyKind::Operator));
    }

    #[test]
    fn seeds_and_garbage_are_not_public_keys() {
        let seed = nkeys::KeyPair::new_account().seed().unwrap();
        assert_eq!(public_key_kind(&seed), None);
        assert_eq!(public_key_kind("ABC"), None);
        let mut acc = nkeys::KeyPair::new_account().public_key();
        acc.replace_range(10..11, if &acc[10..11] == "A" { "B" } else { "A" });
        assert_eq!(
            public_key_kind(&acc),
            None,
            "CRC must catch a changed character"
        );
    }
}
