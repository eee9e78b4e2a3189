//! Friendly units for limits, sizes and points in time, converted to the
//! integers NATS JWTs carry: counts and bytes as int64 with `-1` for
//! unlimited, times as unix seconds. Durations live in `duration.rs`.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Go's `NoLimit`: the wire value of `unlimited`.
pub const UNLIMITED: i64 = -1;

/// Integer or text, as both manifest syntaxes may give a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(i64),
    Text(String),
}

/// A count limit (subscriptions, connections, imports, …): a non-negative
/// integer, or `unlimited` / `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Limit(pub i64);

impl Limit {
    /// The value written into the JWT (`-1` for unlimited).
    pub fn wire(self) -> i64 {
        self.0
    }
}

/// `unlimited` for `-1`, else the number: what a person writes.
impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == UNLIMITED {
            s.serialize_str("unlimited")
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = match Raw::deserialize(d)? {
            Raw::Int(n) => n,
            Raw::Text(t) if is_unlimited(&t) => UNLIMITED,
            Raw::Text(t) => {
                return Err(de::Error::custom(format!(
                    "`{t}` is not a limit: write a whole number, or `unlimited`"
                )))
            }
        };
        if n < UNLIMITED {
            return Err(de::Error::custom(format!(
                "{n} is not a limit: write 0 or more, or `unlimited` (-1)"
            )));
        }
        Ok(Limit(n))
    }
}

impl JsonSchema for Limit {
    fn schema_name() -> Cow<'static, str> {
        "Limit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A count: a whole number, or `unlimited` (also `-1`).",
            "anyOf": [
                {"type": "integer", "minimum": -1},
                {"type": "string", "enum": ["unlimited"]}
            ]
        })
    }
}

/// A number of bytes: plain bytes (`1048576`), a size with a unit (`512MiB`,
/// `1GB`, `64KiB`; SI units are powers of 1000, `…iB` powers of 1024), or
/// `unlimited` / `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub i64);

const SIZE_UNITS: &[(&str, i64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

impl Size {
    /// The value written into the JWT (`-1` for unlimited).
    pub fn wire(self) -> i64 {
        self.0
    }

    /// Parses `unlimited`, `-1`, `1048576`, `512MiB`, `1 GB`.
    pub fn parse(text: &str) -> Result<Size, String> {
        let s = text.trim();
        if is_unlimited(s) {
            return Ok(Size(UNLIMITED));
        }
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let bad = || {
            format!("`{text}` is not a size: write bytes (`1048576`), a size with a unit (`512MiB`, `1GB`, `64KiB`) or `unlimited`")
        };
        if digits == 0 {
            return Err(bad());
        }
        let value: i64 = s[..digits].parse().map_err(|_| bad())?;
        let unit = s[digits..].trim().to_ascii_lowercase();
        let factor = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(bad)?
        };
        value
            .checked_mul(factor)
            .map(Size)
            .ok_or_else(|| format!("size `{text}` is too large"))
    }
}

/// `unlimited` for `-1`; a whole number of KiB, MiB, GiB or TiB with its
/// unit (`1MiB`); else plain bytes. [`Size::parse`] reads each back exactly.
impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == UNLIMITED {
            return s.serialize_str("unlimited");
        }
        let unit = [
            ("TiB", 1i64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ]
        .into_iter()
        .find(|(_, f)| self.0 > 0 && self.0 % f == 0);
        match unit {
            Some((u, f)) => s.serialize_str(&format!("{}{u}", self.0 / f)),
            None => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(n) if n >= UNLIMITED => Ok(Size(n)),
            Raw::Int(n) => Err(de::Error::custom(format!(
                "{n} is not a size: write 0 or more bytes, or `unlimited` (-1)"
            ))),
            Raw::Text(t) => Size::parse(&t).map_err(de::Error::custom),
        }
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Bytes: a whole number, a size with a unit (`512MiB`, `1GB`, `64KiB`; KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024), or `unlimited` (also `-1`).",
            "anyOf": [
                {"type": "integer", "minimum": -1},
                {"type": "string", "pattern": "^\\s*(unlimited|-1|[0-9]+\\s*([KkMmGgTt][Ii]?)?[Bb]?)\\s*$"}
            ]
        })
    }
}

fn is_unlimited(s: &str) -> bool {
    let s = s.trim();
    s.eq_ignore_ascii_case("unlimited") || s == "-1"
}

/// A point in time, written as an RFC 3339 date-time
/// (`2027-01-01T00:00:00Z`, `2027-01-01T09:00:00+02:00`) or a date
/// (`2027-01-01`, meaning midnight UTC). Stored as unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Unix seconds, as JWTs carry them (`exp`, revocations).
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time or a plain date (midnight UTC), after
    /// the unix epoch: JWTs carry unix seconds, where 0 means "never" and
    /// a negative time means nothing to nats-server.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let t = Self::parse_any(text)?;
        if t.0 <= 0 {
            return Err(format!(
                "`{}` is not after 1970-01-01T00:00:00Z, the earliest time a JWT can carry: write a later date, e.g. `2027-01-01`",
                text.trim()
            ));
        }
        Ok(t)
    }

    fn parse_any(text: &str) -> Result<Timestamp, String> {
        let s = text.trim();
        if let Ok(ts) = s.parse::<jiff::Timestamp>() {
            return Ok(Timestamp(ts.as_second()));
        }
        if let Ok(date) = s.parse::<jiff::civil::Date>() {
            if !s.contains(['T', 't', ' ']) {
                let ts = date
                    .to_datetime(jiff::civil::Time::midnight())
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .map_err(|e| e.to_string())?;
                return Ok(Timestamp(ts.timestamp().as_second()));
            }
        }
        Err(format!(
            "`{text}` is not a point in time: write an RFC 3339 date-time with its offset (`2027-01-01T00:00:00Z`) or a date (`2027-01-01`, midnight UTC)"
        ))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC (`2027-01-01T00:00:00Z`), which [`Timestamp::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_second(self.0) {
            Ok(t) => write!(f, "{t}"),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 date-time or a date")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse(v).map_err(E::custom)
    }

    /// TOML hands its native date-times (written without quotes) to serde
    /// as a one-entry map holding the text.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Timestamp, A::Error> {
        let Some((_, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::custom("empty date-time"));
        };
        self.visit_str(&text)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        Err(E::custom(format!(
            "{v} is ambiguous as a point in time: write a date (`2027-01-01`) or an RFC 3339 date-time"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        self.visit_i64(v as i64)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A point in time: an RFC 3339 date-time with offset (`2027-01-01T00:00:00Z`) or a date (`2027-01-01`, midnight UTC).",
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_convert_with_si_and_binary_units() {
        assert_eq!(Size::parse("512MiB").unwrap().wire(), 512 * 1024 * 1024);
        assert_eq!(Size::parse("1GB").unwrap().wire(), 1_000_000_000);
        assert_eq!(Size::parse("1KiB").unwrap().wire(), 1024);
        assert_eq!(Size::parse("1 kb").unwrap().wire(), 1000);
        assert_eq!(Size::parse("4096").unwrap().wire(), 4096);
        assert_eq!(Size::parse("unlimited").unwrap().wire(), -1);
        assert_eq!(Size::parse("-1").unwrap().wire(), -1);
        assert!(Size::parse("12 parsecs").unwrap_err().contains("512MiB"));
        assert!(Size::parse("-2").is_err());
        assert!(Size::parse("99999999999TiB").is_err());
    }

    #[test]
    fn limits_take_integers_or_unlimited() {
        let l: Limit = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(l.wire(), -1);
        let l: Limit = serde_json::from_str("-1").unwrap();
        assert_eq!(l.wire(), -1);
        let l: Limit = serde_json::from_str("5").unwrap();
        assert_eq!(l.wire(), 5);
        assert!(serde_json::from_str::<Limit>("-5").is_err());
        assert!(serde_json::from_str::<Limit>("\"lots\"").is_err());
    }

    #[test]
    fn timestamps_accept_rfc3339_and_dates_as_unix_seconds() {
        assert_eq!(
            Timestamp::parse("2027-01-01T00:00:00Z").unwrap().unix(),
            1_798_761_600
        );
        assert_eq!(
            Timestamp::parse("2027-01-01").unwrap().unix(),
            1_798_761_600
        );
        assert_eq!(
            Timestamp::parse("2027-01-01T02:00:00+02:00")
                .unwrap()
                .unix(),
            1_798_761_600
        );
        assert!(Timestamp::parse("90d").is_err());
        assert!(Timestamp::parse("1900-01-01").is_err());
        assert!(Timestamp::parse("1970-01-01").is_err());
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_err());
        assert_eq!(Timestamp::parse("1970-01-01T00:00:01Z").unwrap().unix(), 1);
        assert!(Timestamp::parse("2027-01-01T00:00:00").is_err());
        assert!(Timestamp::parse("2027-13-01").is_err());
    }

    #[test]
    fn toml_native_datetimes_are_accepted() {
        #[derive(Deserialize)]
        struct T {
            at: Timestamp,
            day: Timestamp,
        }
        let t: T = toml::from_str("at = 2027-01-01T00:00:00Z\nday = 2027-01-01\n").unwrap();
        assert_eq!(t.at.unix(), 1_798_761_600);
        assert_eq!(t.day.unix(), 1_798_761_600);
    }
}

/// When a JWT expires: at a fixed point in time (an RFC 3339 date-time or a
/// date), or a duration after each issue (`90d`), in which case natsform
/// re-issues it when it comes within `reissue_before` of expiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    At(Timestamp),
    After(super::duration::Duration),
}

impl Expiry {
    /// The fixed expiry, if any.
    pub fn at(self) -> Option<Timestamp> {
        match self {
            Expiry::At(t) => Some(t),
            Expiry::After(_) => None,
        }
    }

    /// Seconds of validity from the issue time, if relative.
    pub fn valid_for_secs(self) -> Option<i64> {
        match self {
            Expiry::After(d) => Some(d.as_nanos() / 1_000_000_000),
            Expiry::At(_) => None,
        }
    }
}

impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expiry::At(t) => t.serialize(s),
            Expiry::After(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExpiryVisitor)
    }
}

struct ExpiryVisitor;

impl<'de> Visitor<'de> for ExpiryVisitor {
    type Value = Expiry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 date-time, a date, or a duration such as `90d`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Expiry, E> {
        if let Ok(d) = super::duration::Duration::parse(v) {
            if d.as_nanos() < 1_000_000_000 {
                return Err(E::custom(format!(
                    "`{v}` is shorter than a second; JWT expiry counts whole seconds"
                )));
            }
            return Ok(Expiry::After(d));
        }
        if Timestamp::parse_any(v).is_ok() {
            // A point in time: after the epoch, or said why not.
            return Timestamp::parse(v).map(Expiry::At).map_err(E::custom);
        }
        Err(E::custom(format!(
                "`{v}` is not an expiry: write a duration after issue (`90d`), an RFC 3339 date-time (`2027-01-01T00:00:00Z`) or a date (`2027-01-01`)"
            )))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Expiry, A::Error> {
        TimestampVisitor.visit_map(map).map(Expiry::At)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Expiry, E> {
        Err(E::custom(format!(
            "{v} is ambiguous as an expiry: write a duration (`90d`) or a date (`2027-01-01`)"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Expiry, E> {
        self.visit_i64(v as i64)
    }
}

impl JsonSchema for Expiry {
    fn schema_name() -> Cow<'static, str> {
        "Expiry".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "When the JWT expires: a duration after each issue (`90d`, re-issued within `reissue_before` of expiry), an RFC 3339 date-time with offset (`2027-01-01T00:00:00Z`) or a date (`2027-01-01`, midnight UTC).",
            "type": "string",
            "pattern": "^([0-9]+(ns|us|µs|ms|s|m|h|d|w))+$|^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        })
    }
}
