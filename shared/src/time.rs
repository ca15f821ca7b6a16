//! Timestamps in the contract's one format: UTC RFC 3339, milliseconds, `Z`.
//!
//! With the `chrono` feature (default; the manager and the CLI compute with
//! times) a `Timestamp` wraps a chrono time. Without it (the wasm admin panel,
//! which only reads and shows times) it holds milliseconds since the epoch and
//! reads and writes the same text itself (`time/rfc3339.rs`), which keeps chrono's
//! parsing and formatting machinery out of the panel.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "chrono")]
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(any(test, not(feature = "chrono")))]
mod rfc3339;

/// A point in time, always shown as `2017-04-04T05:16:21.407Z`.
///
/// Stored with millisecond precision so that what is persisted, sent and
/// parsed back is the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2017-04-04T05:16:21.407Z"))]
pub struct Timestamp(Inner);

#[cfg(feature = "chrono")]
type Inner = DateTime<Utc>;
/// Milliseconds since 1970-01-01T00:00:00Z.
#[cfg(not(feature = "chrono"))]
type Inner = i64;

#[cfg(feature = "chrono")]
impl Timestamp {
    /// The current time, truncated to milliseconds.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Wraps a chrono time, truncated to milliseconds.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        let millis = at.timestamp_millis();
        Self(DateTime::from_timestamp_millis(millis).unwrap_or(at))
    }

    /// The chrono value, for arithmetic and local-time display.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "chrono")]
        let text = self.0.to_rfc3339_opts(SecondsFormat::Millis, true);
        #[cfg(not(feature = "chrono"))]
        let text = rfc3339::format(self.0);
        f.write_str(&text)
    }
}

/// 0000-01-01T00:00:00Z up to, not including, 10000-01-01T00:00:00Z, in
/// milliseconds since 1970: the times RFC 3339 (and the stores' text) can write.
#[cfg(not(feature = "chrono"))]
const FOUR_DIGIT_YEARS: std::ops::Range<i64> = -62_167_219_200_000..253_402_300_800_000;

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTimestamp(pub String);

impl fmt::Display for InvalidTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an RFC 3339 timestamp: {:?}", self.0)
    }
}

impl std::error::Error for InvalidTimestamp {}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        #[cfg(feature = "chrono")]
        // Four-digit years only, also after the offset is applied: the stores
        // keep times as text of one width (text order is time order), and
        // RFC 3339 cannot write year 10000.
        let parsed = DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|at| Self::from_datetime(at.with_timezone(&Utc)))
            .filter(|at| (0..=9999).contains(&chrono::Datelike::year(&at.0)));
        #[cfg(not(feature = "chrono"))]
        let parsed = rfc3339::parse(s).filter(|millis| FOUR_DIGIT_YEARS.contains(millis)).map(Self);
        parsed.ok_or_else(|| InvalidTimestamp(s.to_owned()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Timestamp>` where "unset" is the empty string, as the
/// status object of the contract has it (`"activated_at": ""`).
pub mod empty_if_none {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `None` as `""`.
    pub fn serialize<S: Serializer>(value: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => s.collect_str(at),
            None => s.serialize_str(""),
        }
    }

    /// Reads `""` (or `null`) as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let at: Timestamp = "2017-04-04T05:16:21.407123+00:00".parse().unwrap();
        assert_eq!(at.to_string(), "2017-04-04T05:16:21.407Z");
    }

    #[test]
    fn converts_offsets_to_utc() {
        let at: Timestamp = "2017-04-04T07:16:21.407+02:00".parse().unwrap();
        assert_eq!(at.to_string(), "2017-04-04T05:16:21.407Z");
    }

    #[test]
    fn round_trips_through_json() {
        let at: Timestamp = "2017-04-04T05:16:21.407Z".parse().unwrap();
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2017-04-04T05:16:21.407Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
    }

    #[test]
    fn refuses_times_whose_utc_year_has_five_digits() {
        assert!("9999-12-31T23:30:00-01:00".parse::<Timestamp>().is_err());
        assert!("0000-01-01T00:30:00+01:00".parse::<Timestamp>().is_err());
        let last: Timestamp = "9999-12-31T23:59:59.999Z".parse().unwrap();
        assert_eq!(last.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!(serde_json::from_str::<Timestamp>("\"\"").is_err());
    }
}
