//! Human durations (`500ms`, `90s`, `1m`, `12h`, `90d`) as the manifest writes them.

use std::fmt;

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration with nanosecond precision, written with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i64,
}

const UNITS: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
    ("w", 7 * 86_400 * 1_000_000_000),
];

impl Duration {
    /// A duration of `nanos` nanoseconds.
    pub fn from_nanos(nanos: i64) -> Self {
        Duration { nanos }
    }

    /// Nanoseconds, the unit NATS JWTs use for Go `time.Duration` fields.
    pub fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Parses `<number><unit>` terms, e.g. `1h30m`, `500ms`, `90d`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s = text.trim();
        if s == "0" {
            return Ok(Duration { nanos: 0 });
        }
        if s.is_empty() {
            return Err("empty duration".into());
        }
        let mut rest = s;
        let mut total: i64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad(text));
            }
            let value: i64 = rest[..digits].parse().map_err(|_| bad(text))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let factor = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| bad(text))?;
            total = value
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("duration `{text}` is too large"))?;
            rest = &rest[unit_len..];
        }
        Ok(Duration { nanos: total })
    }
}

fn bad(text: &str) -> String {
    format!("`{text}` is not a duration: write a number with a unit, e.g. `500ms`, `30s`, `1m`, `12h`, `90d`")
}

impl fmt::Display for Duration {
    /// Renders with the largest unit that divides the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0s");
        }
        let (unit, factor) = UNITS
            .iter()
            .rev()
            .filter(|(u, _)| *u != "µs" && *u != "w")
            .find(|(_, factor)| self.nanos % factor == 0)
            .copied()
            .unwrap_or(("ns", 1));
        write!(f, "{}{}", self.nanos / factor, unit)
    }
}

/// The [`Display`](fmt::Display) text (`1m`), which [`Duration::parse`] reads back.
impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
            Raw::Int(0) => Ok(Duration { nanos: 0 }),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "a bare number ({n}) is ambiguous as a duration: add a unit, e.g. `{n}s` or `{n}ms`"
            ))),
        }
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: numbers with units, e.g. `500ms`, `30s`, `1m`, `12h`, `90d`, `1h30m` (units ns, us, ms, s, m, h, d, w), or `0`.",
            "anyOf": [
                {"type": "string", "pattern": "^\\s*(0|([0-9]+(ns|us|µs|ms|s|m|h|d|w))+)\\s*$"},
                {"type": "integer", "enum": [0]}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_to_nanoseconds_as_go_durations() {
        assert_eq!(Duration::parse("1m").unwrap().as_nanos(), 60_000_000_000);
        assert_eq!(Duration::parse("500ms").unwrap().as_nanos(), 500_000_000);
        assert_eq!(
            Duration::parse("90d").unwrap().as_nanos(),
            90 * 86_400 * 1_000_000_000
        );
        assert_eq!(
            Duration::parse("1h30m").unwrap().as_nanos(),
            5_400_000_000_000
        );
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        assert!(Duration::parse("5").unwrap_err().contains("e.g."));
        assert!(Duration::parse("5 parsecs").is_err());
        assert!(Duration::parse("m").is_err());
    }

    #[test]
    fn display_uses_the_largest_exact_unit() {
        assert_eq!(Duration::parse("60s").unwrap().to_string(), "1m");
        assert_eq!(Duration::parse("1500ms").unwrap().to_string(), "1500ms");
    }
}
