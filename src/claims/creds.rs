//! User `.creds` files: the decorated JWT plus the decorated user seed
//! (facts §9.2, `jwt/v2/creds_utils.go`).

use super::error::ClaimsError;
use std::fmt;

/// An nkey seed as text. `Debug` never shows it; read it with [`Seed::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(String);

impl Seed {
    /// Wraps seed text (whitespace around it is trimmed).
    pub fn new(seed: impl Into<String>) -> Self {
        Seed(seed.into().trim().to_string())
    }

    /// The seed text. Handle with care: never log or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key pair for this seed.
    pub fn key_pair(&self) -> Result<nkeys::KeyPair, ClaimsError> {
        nkeys::KeyPair::from_seed(&self.0).map_err(|_| ClaimsError::Creds("invalid nkey seed"))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// The two parts of a creds file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// The user JWT, as found (not verified).
    pub jwt: String,
    /// The user seed (`SU…`), checked to be a well-formed user seed.
    pub seed: Seed,
}

/// The exact bytes Go's `FormatUserConfig` writes: 13 lines ending in a
/// newline. Surrounding whitespace of `seed` is trimmed, as Go's
/// `DecorateSeed` does; `jwt` is written as given. The caller is
/// responsible for passing a user JWT and a user (`SU`) seed.
pub fn format_user_creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n\
         {jwt}\n\
         ------END NATS USER JWT------\n\
         \n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\
         \n\
         -----BEGIN USER NKEY SEED-----\n\
         {seed}\n\
         ------END USER NKEY SEED------\n\
         \n\
         *************************************************************\n",
        seed = seed.trim()
    )
}

/// Reads a creds file the way Go's `ParseDecoratedJWT` and
/// `ParseDecoratedUserNKey` do: the first banner-delimited block is the
/// JWT (or, with no block at all, the whole text); the second block is the
/// seed, or, with fewer than two blocks, the first line that starts with
/// `SO`, `SA` or `SU` after trimming. The seed must be a valid user seed.
///
/// Error messages never contain any part of the input.
pub fn parse_creds(text: &str) -> Result<Creds, ClaimsError> {
    let blocks = find_blocks(text);
    let jwt = blocks.first().copied().unwrap_or(text).to_string();
    let seed = match blocks.get(1) {
        Some(s) => *s,
        None => text
            .split('\n')
            .find(|l| {
                let t = l.trim();
                t.starts_with("SO") || t.starts_with("SA") || t.starts_with("SU")
            })
            .ok_or(ClaimsError::Creds("no nkey seed found"))?,
    };
    // Go checks the untrimmed line, so indented seeds are refused, but its
    // base32 decoder skips the `\r` of CRLF files.
    if !(seed.starts_with("SO") || seed.starts_with("SA") || seed.starts_with("SU")) {
        return Err(ClaimsError::Creds("doesn't contain a seed nkey"));
    }
    let seed = Seed::new(seed.trim_end_matches(['\r', '\n']));
    let kp = seed.key_pair()?;
    if kp.key_pair_type() != nkeys::KeyPairType::User || !seed.expose().starts_with("SU") {
        return Err(ClaimsError::Creds("doesn't contain an user seed nkey"));
    }
    Ok(Creds { jwt, seed })
}

/// All non-overlapping matches of Go's
/// `\s*(?:(?:[-]{3,}.*[-]{3,}\r?\n)([\w\-.=]+)(?:\r?\n[-]{3,}.*[-]{3,}(\r?\n|\z)))`,
/// returning capture group 1 of each, leftmost first.
fn find_blocks(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((capture, end)) = (pos..b.len()).find_map(|p| block_at(b, p)) {
        out.push(&text[capture.0..capture.1]);
        pos = end;
    }
    out
}

/// A banner line: three or more dashes, anything, three or more dashes.
fn is_banner(line: &[u8]) -> bool {
    line.len() >= 6 && line.starts_with(b"---") && line.ends_with(b"---")
}

/// Splits off the line starting at `p`: its content without one trailing
/// `\r`, and the index just past its `\n` (None when the text ends first).
fn line_at(b: &[u8], p: usize) -> (&[u8], Option<usize>) {
    match b[p..].iter().position(|&c| c == b'\n') {
        Some(i) => {
            let line = &b[p..p + i];
            (line.strip_suffix(b"\r").unwrap_or(line), Some(p + i + 1))
        }
        None => (&b[p..], None),
    }
}

/// The capture range and match end when a block starts at `p`.
fn block_at(b: &[u8], p: usize) -> Option<((usize, usize), usize)> {
    let (open, next) = line_at(b, p);
    let start = next?;
    if !is_banner(open) {
        return None;
    }
    let is_token = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'=');
    let end = start + b[start..].iter().take_while(|&&c| is_token(c)).count();
    if end == start {
        return None;
    }
    let mut q = end;
    if b.get(q) == Some(&b'\r') {
        q += 1;
    }
    if b.get(q) != Some(&b'\n') {
        return None;
    }
    q += 1;
    // The closing banner ends at a newline or, per `\z`, at the end of the text.
    let (close, after) = line_at(b, q);
    if !is_banner(close) {
        return None;
    }
    Some(((start, end), after.unwrap_or(b.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_seed() -> String {
        nkeys::KeyPair::new_user().seed().unwrap()
    }

    #[test]
    fn format_then_parse_round_trips() {
        let seed = user_seed();
        let text = format_user_creds("eyJ.a.b", &seed);
        assert_eq!(text.lines().count(), 13);
        assert!(text.ends_with("*\n"));
        let c = parse_creds(&text).unwrap();
        assert_eq!(c.jwt, "eyJ.a.b");
        assert_eq!(c.seed.expose(), seed);
    }

    #[test]
    fn crlf_files_parse() {
        let seed = user_seed();
        let text = format_user_creds("eyJ.a.b", &seed).replace('\n', "\r\n");
        let c = parse_creds(&text).unwrap();
        assert_eq!(
            (c.jwt.as_str(), c.seed.expose()),
            ("eyJ.a.b", seed.as_str())
        );
    }

    #[test]
    fn a_bare_seed_line_is_found_without_banners() {
        let seed = user_seed();
        let c = parse_creds(&format!("some.jwt\n{seed}\n")).unwrap();
        assert_eq!(c.seed.expose(), seed);
        assert_eq!(
            c.jwt,
            format!("some.jwt\n{seed}\n"),
            "Go returns the whole text as the JWT"
        );
    }

    #[test]
    fn seeds_never_appear_in_errors_or_debug() {
        let seed = user_seed();
        let broken = format!(
            "---a---\nJWT\n---b---\n---c---\n{}X\n---d---\n",
            &seed[..57]
        );
        let err = parse_creds(&broken).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(&seed[..20]));
        let c = parse_creds(&format_user_creds("j", &seed)).unwrap();
        assert!(!format!("{c:?}").contains(&seed[..20]));
        let acct = nkeys::KeyPair::new_account().seed().unwrap();
        let err = parse_creds(&format_user_creds("j", &acct)).unwrap_err();
        assert_eq!(err, ClaimsError::Creds("doesn't contain an user seed nkey"));
    }

    #[test]
    fn blocks_follow_the_go_regex() {
        assert_eq!(find_blocks("---a---\nX\n---b---"), vec!["X"]);
        assert_eq!(
            find_blocks("  ---a---\nX=\r\n---b---\n\n---c---\nY\n---d---\n"),
            vec!["X=", "Y"]
        );
        assert!(
            find_blocks("-----\nX\n---b---").is_empty(),
            "5 dashes are not a banner"
        );
        assert!(find_blocks("---a---\nX Y\n---b---").is_empty());
        assert_eq!(
            find_blocks("xx---a---\nZ\n------"),
            vec!["Z"],
            "banners may start mid-line"
        );
    }
}
