//! JSON text exactly as Go's `encoding/json.Marshal` writes it.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings
//! (`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`), and Go before 1.22
//! (Debian's 1.19, the oracle, and the Go that built nats-server 2.9.10)
//! writes backspace and form feed as `\u0008` and `\u000c` where serde_json
//! writes `\b` and `\f`. Everything else (compact output, `\n`, `\r`, `\t`,
//! `\u00XX` with lower-case hex for other control characters) already
//! matches serde_json's compact output. Byte equality matters because the
//! jti is a hash of this text and because we diff payloads against Go's.
//!
//! Instead of post-processing the text (which would have to track string
//! boundaries and existing escapes), a serde_json `Formatter` writes the
//! escapes while serialising.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use std::io;

/// A compact formatter that escapes strings the way Go's `json.Marshal` does.
#[derive(Debug, Default, Clone, Copy)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        match char_escape {
            CharEscape::Backspace => writer.write_all(b"\\u0008"),
            CharEscape::FormFeed => writer.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// Serialises `value` as compact JSON, byte-identical to Go's `json.Marshal`
/// of the equivalent Go value.
///
/// Errors only if `value`'s `Serialize` impl fails (e.g. a map with
/// non-string keys). Every claim type in this module serialises infallibly.
pub fn try_to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    // The formatter only ever writes UTF-8: serde_json writes valid UTF-8 and
    // our escapes are ASCII.
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Like [`try_to_string`], for values whose serialisation cannot fail, such
/// as every claim type in `crate::claims` and `serde_json::Value`.
///
/// # Panics
/// Panics if `value`'s `Serialize` impl reports an error; that would be a bug
/// in the type, not a data problem.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    try_to_string(value).expect("claim types serialise infallibly")
}

/// Deserialises like Go's decoder treats `null`: as the zero value.
///
/// Old Go writers emit `null` for some nil slices (e.g. `auth_users` in
/// jwt 2.4.0 to 2.5.4), and Go reads `null` anywhere without complaint.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `skip_serializing_if` helper: Go's omitempty for integers.
pub(crate) fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `skip_serializing_if` helper: Go's omitempty for booleans.
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_characters_like_go() {
        let s = to_string(&"a<b>&c\u{2028}\u{2029}");
        assert_eq!(s, r#""a\u003cb\u003e\u0026c\u2028\u2029""#);
    }

    #[test]
    fn control_characters_match_go_1_19() {
        let s = to_string(&"\u{8}\u{c}\n\r\t\u{1}\u{1f}\"\\/\u{7f}");
        assert_eq!(
            s,
            r#""\u0008\u000c\n\r\t\u0001\u001f\"\\/\u007f""#.replace("\\u007f", "\u{7f}")
        );
    }

    #[test]
    fn existing_backslashes_are_not_reescaped() {
        // A literal backslash followed by 'b' must stay `\\b`, not become `\u0008`.
        assert_eq!(to_string(&"\\b"), r#""\\b""#);
    }

    #[test]
    fn nested_output_is_compact() {
        let v = serde_json::json!({"k": ["svc.>", 1, true, null]});
        assert_eq!(to_string(&v), r#"{"k":["svc.\u003e",1,true,null]}"#);
    }
}
