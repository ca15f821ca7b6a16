//! The times `schedule` takes (`--start`, `--end`): RFC 3339 with any offset,
//! a date and time without an offset in local time, or `+2h` from now.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use shared::Timestamp;

/// Date-and-time forms without an offset, read in the local time zone.
const LOCAL_FORMATS: [&str; 4] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"];

/// Reads `text` as a point in time: RFC 3339 (`2030-01-01T10:00:00+02:00`,
/// `…Z`), `YYYY-MM-DD[T ]HH:MM[:SS]` in `zone` (the caller passes
/// `chrono::Local`), or `+N` with a unit `s`, `m`, `h` or `d` after `now`.
/// The error says what was wrong, for the caller to prefix with the flag.
pub fn parse<Tz: TimeZone>(text: &str, now: DateTime<Utc>, zone: &Tz) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Some(relative) = text.strip_prefix('+') {
        return after(relative, now).map(Timestamp::from_datetime);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp::from_datetime(at.with_timezone(&Utc)));
    }
    let naive = LOCAL_FORMATS.iter().find_map(|format| NaiveDateTime::parse_from_str(text, format).ok());
    let Some(naive) = naive else {
        return Err(format!(
            "{text:?} is not a time: give RFC 3339 (2030-01-01T10:00:00+02:00 or 2030-01-01T08:00:00Z), a local \
             YYYY-MM-DD HH:MM[:SS], or a time from now (+90s, +30m, +2h, +1d)"
        ));
    };
    resolve(zone.from_local_datetime(&naive), text)
}

/// The one instant a local time names: the first of two when the clocks pass
/// it twice (the hour after a change back), none when they skip it.
fn resolve<Tz: TimeZone>(local: LocalResult<DateTime<Tz>>, text: &str) -> Result<Timestamp, String> {
    match local {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(Timestamp::from_datetime(at.with_timezone(&Utc))),
        LocalResult::None => {
            Err(format!("{text:?} does not exist in local time (the clocks skip it): give an offset or another time"))
        }
    }
}

/// `90s`, `30m`, `2h`, `1d` after `now`.
fn after(relative: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let wrong =
        || format!("\"+{relative}\" is not a time from now: give a whole number and a unit, as +90s, +30m, +2h or +1d");
    let unit_at = relative.len().checked_sub(1).ok_or_else(wrong)?;
    let (count, unit) = relative.split_at(unit_at);
    let seconds_per: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(wrong()),
    };
    if count.is_empty() || !count.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(wrong());
    }
    let too_far = || format!("\"+{relative}\" is too far in the future");
    let count: i64 = count.parse().map_err(|_| too_far())?;
    let delta = count.checked_mul(seconds_per).and_then(TimeDelta::try_seconds).ok_or_else(too_far)?;
    now.checked_add_signed(delta).ok_or_else(too_far)
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn read(text: &str) -> Result<String, String> {
        let paris = FixedOffset::east_opt(3600).unwrap();
        parse(text, now(), &paris).map(|at| at.to_string())
    }

    #[test]
    fn rfc3339_with_any_offset_is_utc() {
        assert_eq!(read("2030-01-01T10:00:00+02:00").unwrap(), "2030-01-01T08:00:00.000Z");
        assert_eq!(read("2030-01-01T08:00:00Z").unwrap(), "2030-01-01T08:00:00.000Z");
        assert_eq!(read("2030-01-01T08:00:00.25-01:30").unwrap(), "2030-01-01T09:30:00.250Z");
        assert_eq!(read(" 2030-01-01T08:00:00z ").unwrap(), "2030-01-01T08:00:00.000Z");
    }

    #[test]
    fn without_an_offset_it_is_local_time() {
        for text in ["2030-01-01T10:00", "2030-01-01T10:00:00", "2030-01-01 10:00", "2030-01-01 10:00:00"] {
            assert_eq!(read(text).unwrap(), "2030-01-01T09:00:00.000Z", "{text}");
        }
        assert_eq!(read("2030-01-01 10:00:30.5").unwrap(), "2030-01-01T09:00:30.500Z");
    }

    #[test]
    fn relative_times_count_from_now() {
        assert_eq!(read("+90s").unwrap(), "2030-01-01T00:01:30.000Z");
        assert_eq!(read("+30m").unwrap(), "2030-01-01T00:30:00.000Z");
        assert_eq!(read("+2h").unwrap(), "2030-01-01T02:00:00.000Z");
        assert_eq!(read("+1d").unwrap(), "2030-01-02T00:00:00.000Z");
    }

    #[test]
    fn anything_else_is_refused_with_the_forms_it_takes() {
        for text in ["tomorrow", "", "2030-01-01", "2030-13-01 10:00", "10:00", "+", "+h", "+2", "+2w", "+-2h", "+1.5h"]
        {
            let error = read(text).unwrap_err();
            assert!(error.contains("+2h"), "{text}: {error}");
        }
        assert!(read("+99999999999999999999d").unwrap_err().contains("too far"));
        assert!(read("+9223372036854775807d").unwrap_err().contains("too far"));
    }

    #[test]
    fn a_local_time_the_clocks_skip_is_refused_and_a_repeated_one_is_the_first() {
        let summer = FixedOffset::east_opt(7200).unwrap();
        let winter = FixedOffset::east_opt(3600).unwrap();
        let naive = NaiveDateTime::parse_from_str("2030-10-27 02:30", "%Y-%m-%d %H:%M").unwrap();
        let first = summer.from_local_datetime(&naive).unwrap();
        let second = winter.from_local_datetime(&naive).unwrap();
        let twice = resolve(LocalResult::Ambiguous(first, second), "2030-10-27 02:30");
        assert_eq!(twice.unwrap().to_string(), "2030-10-27T00:30:00.000Z");
        let skipped = resolve(LocalResult::<DateTime<FixedOffset>>::None, "2030-03-31 02:30");
        assert!(skipped.unwrap_err().contains("does not exist in local time"));
    }
}
