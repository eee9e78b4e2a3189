//! Hiding secrets in text that is about to be shown: the one function every
//! error path uses, so a seed or an age secret key pasted into the wrong
//! place (a manifest field, a file passed as the manifest) is never echoed.
//!
//! Two shapes are recognised:
//! - an nkey seed: `S` followed by the kind of key (`O`, `A`, `U`, `N`, `C`,
//!   `X` or `P`) and base32 (`A`–`Z`, `2`–`7`), 58 characters in all. A run
//!   that starts like a seed is hidden from 50 characters on (a seed with a
//!   few characters lost is still a secret); a longer run is hidden when a
//!   complete seed is inside it. Public keys (56 characters, never starting
//!   with `S`) are left alone.
//! - an age secret key: `AGE-SECRET-KEY-1` (any case) and what follows it.

use std::borrow::Cow;

/// Second characters of an nkey seed: the nkeys prefix bytes of operator,
/// account, user, server (`N`), cluster (`C`), curve (`X`) and private (`P`)
/// keys.
const SEED_KINDS: &[u8] = b"OAUNCXP";
/// Length of an encoded nkey seed.
const SEED_LEN: usize = 58;
/// A run starting like a seed is hidden from this length on.
const SEED_MIN: usize = 50;
const AGE_PREFIX: &str = "AGE-SECRET-KEY-1";
/// Characters after [`AGE_PREFIX`] from which a key is hidden (a key has 58).
const AGE_MIN_REST: usize = 8;

fn is_b32(b: u8) -> bool {
    b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)
}

fn seed_start(run: &[u8], j: usize) -> bool {
    run[j] == b'S' && run.get(j + 1).is_some_and(|k| SEED_KINDS.contains(k))
}

/// Whether `run` (a maximal run of base32 characters) is, or holds, a seed.
fn run_is_secret(run: &[u8]) -> bool {
    (run.len() >= SEED_MIN && seed_start(run, 0))
        || (run.len() >= SEED_LEN && (1..=run.len() - SEED_LEN).any(|j| seed_start(run, j)))
}

/// `text` with every seed replaced by `SU…(seed; not shown)` (its first two
/// characters kept, so the reader knows what was pasted) and every age
/// secret key by `AGE-SECRET-KEY-1…(not shown)`. Borrows when nothing
/// needed hiding.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    if !contains_secret(text) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if is_b32(bytes[i]) {
            let end = i + bytes[i..].iter().take_while(|b| is_b32(**b)).count();
            let run = &bytes[i..end];
            if run_is_secret(run) {
                if seed_start(run, 0) {
                    out.push_str(&text[i..i + 2]);
                    out.push_str("…(seed; not shown)");
                } else {
                    out.push_str("…(seed; not shown)");
                }
                i = end;
                continue;
            }
            // An age key may start inside the run (`…XAGE-SECRET-KEY-1…`).
            if let Some((j, len)) = (i..end).find_map(|j| age_key_at(bytes, j).map(|l| (j, l))) {
                out.push_str(&text[i..j]);
                out.push_str(AGE_PREFIX);
                out.push_str("…(not shown)");
                i = j + len;
                continue;
            }
            out.push_str(&text[i..end]);
            i = end;
            continue;
        }
        if let Some(len) = age_key_at(bytes, i) {
            out.push_str(AGE_PREFIX);
            out.push_str("…(not shown)");
            i += len;
            continue;
        }
        let ch = text[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

/// Whether `text` holds anything [`redact_secrets`] would hide.
pub fn contains_secret(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if age_key_at(bytes, i).is_some() {
            return true;
        }
        if is_b32(bytes[i]) {
            let end = i + bytes[i..].iter().take_while(|b| is_b32(**b)).count();
            if run_is_secret(&bytes[i..end]) {
                return true;
            }
            // An age key may start inside the run (`…XAGE-SECRET-KEY-1…`).
            if (i..end).any(|j| age_key_at(bytes, j).is_some()) {
                return true;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    false
}

/// `text` with the escapes of TOML and YAML strings that can spell a
/// base32 character (`\uXXXX`, `\UXXXXXXXX`, `\xHH`) replaced by that
/// character, and every other backslash dropped: what a string quoted on
/// a line may say once parsed, for [`contains_secret`].
pub fn unescaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = match after.chars().next() {
            Some('u') => 4,
            Some('U') => 8,
            Some('x') => 2,
            _ => 0,
        };
        let decoded = (digits > 0)
            .then(|| after.get(1..1 + digits))
            .flatten()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[1 + digits..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// The length of the age secret key starting at `i`, if one does: the
/// prefix (any case) and the bech32 characters after it.
fn age_key_at(bytes: &[u8], i: usize) -> Option<usize> {
    let p = AGE_PREFIX.as_bytes();
    if bytes.len() - i < p.len() || !bytes[i..i + p.len()].eq_ignore_ascii_case(p) {
        return None;
    }
    let rest = bytes[i + p.len()..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    // The prefix alone (`AGE-SECRET-KEY-1…` in a help text, or what this
    // module leaves) is no secret; a key has 58 characters after it.
    (rest >= AGE_MIN_REST).then_some(p.len() + rest)
}

#[cfg(test)]
mod tests {

    #[test]
    fn unescaped_spells_what_toml_and_yaml_escapes_say() {
        assert_eq!(unescaped(r"a\u0053b\U00000055c\x4Ed"), "aSbUcNd");
        assert_eq!(unescaped(r"x\ty\\z\"), "xtyz");
        // Not an escape that spells a character: the backslash goes, the
        // rest stays.
        assert_eq!(unescaped(r"\uZZZZ\u00"), "uZZZZu00");
        let seed = nkeys::KeyPair::new_user().seed().unwrap();
        let escaped = format!("k = \"\\u0053{}\"", &seed[1..]);
        assert!(!contains_secret(&escaped));
        assert!(contains_secret(&unescaped(&escaped)));
    }

    use super::*;

    fn seed(kind: crate::keys::KeyKind) -> (String, String) {
        let kp = crate::keys::generate(kind);
        (kp.seed().unwrap(), kp.public_key())
    }

    #[test]
    fn every_kind_of_seed_is_hidden_and_public_keys_are_kept() {
        use crate::keys::KeyKind;
        for kind in [KeyKind::Operator, KeyKind::Account, KeyKind::User] {
            let (s, pk) = seed(kind);
            let text = format!("`{s}` is not a public key; {pk} is");
            let shown = redact_secrets(&text);
            assert!(!shown.contains(&s), "{shown}");
            assert!(shown.contains(&pk), "{shown}");
            assert!(shown.contains(&format!("{}…(seed; not shown)", &s[..2])));
            assert!(contains_secret(&text));
            assert!(!contains_secret(&shown));
        }
        for kp in [
            nkeys::KeyPair::new_server(),
            nkeys::KeyPair::new_cluster(),
            nkeys::KeyPair::new(nkeys::KeyPairType::Curve),
        ] {
            let s = kp.seed().unwrap();
            assert_eq!(redact_secrets(&s), format!("{}…(seed; not shown)", &s[..2]));
        }
    }

    #[test]
    fn seeds_glued_to_other_text_truncated_or_doubled_are_hidden() {
        let (s, _) = seed(crate::keys::KeyKind::User);
        for text in [
            format!("public_key = \"{s}\""),
            format!("xx{s}yy"),
            format!("{s}{s}"),
            format!("AB{s}"),
            s[..52].to_string(),
            format!("-----BEGIN USER NKEY SEED-----\n{s}\n------END USER NKEY SEED------"),
        ] {
            let shown = redact_secrets(&text);
            assert!(!shown.contains(&s[..50]), "{text} -> {shown}");
        }
    }

    #[test]
    fn age_secret_keys_are_hidden_in_any_case() {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let key = id.to_string().expose_secret().to_string();
        let text = format!("# created\n{key}\nand {}", key.to_lowercase());
        let shown = redact_secrets(&text);
        assert!(!shown.contains(&key[16..]), "{shown}");
        assert!(!shown.to_uppercase().contains(&key[16..]), "{shown}");
        assert_eq!(
            shown,
            "# created\nAGE-SECRET-KEY-1…(not shown)\nand AGE-SECRET-KEY-1…(not shown)"
        );
        let glued = format!("X{key}");
        assert!(!redact_secrets(&glued).contains(&key[16..]));
        // What redaction leaves is not redacted again.
        assert!(!contains_secret(&shown));
        assert!(!contains_secret("AGE-SECRET-KEY-1… is an identity"));
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        let text = "SUBJECT foo.bar `ABCDEFGHIJKLMNOPQRSTUVWXYZ234567` SU s é";
        assert!(matches!(redact_secrets(text), Cow::Borrowed(_)));
        let (_, pk) = seed(crate::keys::KeyKind::Account);
        assert!(matches!(redact_secrets(&pk), Cow::Borrowed(_)));
    }
}
