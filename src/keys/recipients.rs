//! age recipients from the manifest's `secrets.recipients` list.
//!
//! Follows rage's recipient conventions (native X25519 `age1…` keys and SSH
//! public keys), but takes strings only: the list lives in the reviewed
//! manifest, so who can decrypt the vault is visible in every pull request.

use std::fmt;
use std::str::FromStr;

use age::ssh::ParseRecipientKeyError;

use crate::keys::error::{short, KeysError, Result};

/// A parsed, non-secret set of age recipients, in manifest order.
pub struct Recipients {
    entries: Vec<Entry>,
}

struct Entry {
    /// The entry as written (trimmed); public, kept for Debug and messages.
    text: String,
    recipient: Box<dyn age::Recipient + Send + Sync>,
}

impl Recipients {
    /// Parses every entry; fails on the first bad one, naming its index and
    /// a short prefix. Entries are trimmed; an empty list is accepted here
    /// (a plan needs no recipients) and rejected when something is encrypted.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Recipients> {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(index, s)| parse_one(index, s.as_ref().trim()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Recipients { entries })
    }

    /// Number of recipients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no recipients.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written (trimmed), in manifest order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.text.as_str())
    }

    /// What an age file sealed to exactly these recipients shows in its
    /// header (see [`crate::keys::vault::Sealed`]).
    pub fn sealed_shape(&self) -> crate::keys::vault::Sealed {
        let mut sealed = crate::keys::vault::Sealed::default();
        for e in &self.entries {
            if e.text.starts_with("age1") {
                sealed.x25519 += 1;
            } else if let Some(tag) = ssh_tag(&e.text) {
                sealed.ssh.push(tag);
            }
        }
        sealed.ssh.sort();
        sealed
    }

    /// The recipients in the form `age::Encryptor` takes.
    pub(crate) fn as_age(&self) -> impl Iterator<Item = &dyn age::Recipient> {
        self.entries
            .iter()
            .map(|e| e.recipient.as_ref() as &dyn age::Recipient)
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.texts()).finish()
    }
}

fn parse_one(index: usize, s: &str) -> Result<Entry> {
    let bad = |reason: &str| KeysError::BadRecipient {
        index,
        // A seed pasted here is a secret: not even its prefix is shown.
        shown: if s.starts_with('S') {
            "S… (looks like a seed; not shown)".to_string()
        } else {
            short(s, 16)
        },
        reason: reason.to_string(),
    };
    if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        // A pasted secret key must not be echoed, not even its prefix.
        return Err(KeysError::BadRecipient {
            index,
            shown: "AGE-SECRET-KEY-…".to_string(),
            reason: "this is a secret key (an identity), not a recipient; put its public key \
                     (`age-keygen -y KEYFILE`) here and remove the secret from the manifest"
                .to_string(),
        });
    }
    if s.contains("PRIVATE KEY") {
        return Err(bad(
            "this is an SSH private key; use the matching public key (the .pub file)",
        ));
    }
    let recipient: Box<dyn age::Recipient + Send + Sync> = if s.starts_with("age1") {
        match age::x25519::Recipient::from_str(s) {
            Ok(r) => Box::new(r),
            Err(_) => return Err(bad("not a valid X25519 key (bad length or checksum)")),
        }
    } else if s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-") {
        match age::ssh::Recipient::from_str(s) {
            Ok(r) => Box::new(r),
            Err(e) => return Err(bad(&ssh_reason(e))),
        }
    } else if s.is_empty() {
        return Err(bad("the entry is empty"));
    } else {
        return Err(bad("unrecognised format"));
    };
    Ok(Entry {
        text: s.to_string(),
        recipient,
    })
}

/// `ssh-ed25519 TAG` as age's SSH stanza names the key: the first four
/// bytes of the SHA-256 of its wire form, base64 without padding.
fn ssh_tag(text: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut fields = text.split_whitespace();
    let kind = fields.next()?;
    if kind != "ssh-ed25519" && kind != "ssh-rsa" {
        return None;
    }
    let blob = data_encoding::BASE64
        .decode(fields.next()?.as_bytes())
        .ok()?;
    let hash = Sha256::digest(&blob);
    Some(format!(
        "{kind} {}",
        data_encoding::BASE64_NOPAD.encode(&hash[..4])
    ))
}

fn ssh_reason(e: ParseRecipientKeyError) -> String {
    match e {
        ParseRecipientKeyError::Invalid(why) => format!("not a valid SSH public key ({why})"),
        ParseRecipientKeyError::RsaModulusTooSmall => {
            "the RSA key is shorter than 2048 bits; use a longer key or ssh-ed25519".to_string()
        }
        ParseRecipientKeyError::RsaModulusTooLarge => {
            "the RSA key is larger than age supports; use ssh-ed25519".to_string()
        }
        ParseRecipientKeyError::Unsupported(kind) => {
            format!("SSH key type {kind} is not supported by age")
        }
        // Ignore and any variant added by a future age release.
        _ => "this SSH key type is not supported by age".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn err(entries: &[&str]) -> String {
        Recipients::parse(entries).unwrap_err().to_string()
    }

    #[test]
    fn x25519_and_ssh_public_keys_are_accepted() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        // Public half of a throwaway key made for this test; its private half was discarded.
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMP1vthkBIoj6G7l2mFB2pwqV0tDNvVGxELmJvsNGeTx test-only";
        let r = Recipients::parse(&[x.as_str(), ssh]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.texts().next(), Some(x.as_str()));
    }

    #[test]
    fn an_empty_list_parses_to_no_recipients() {
        assert!(Recipients::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_bad_recipient_is_named_by_index_and_prefix() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        crate::keys::tests::snapshot(
            "bad_recipient",
            &err(&[&x, "age1notreallyakeyatallbutlongenough"]),
        );
        crate::keys::tests::snapshot("unrecognised_recipient", &err(&["gpg:ABCDEF0123456789"]));
    }

    #[test]
    fn a_pasted_secret_key_is_rejected_without_echoing_it() {
        let secret = age::x25519::Identity::generate().to_string();
        let secret = secret.expose_secret();
        let msg = err(&[secret]);
        assert!(!msg.contains(&secret[16..]), "{msg}");
        crate::keys::tests::snapshot("secret_key_as_recipient", &msg);
    }

    #[test]
    fn a_truncated_ssh_key_is_rejected() {
        let msg = err(&["ssh-ed25519 AAAAC3NzaC1lZDI1"]);
        assert!(msg.starts_with("secrets.recipients[0]"), "{msg}");
    }
}
