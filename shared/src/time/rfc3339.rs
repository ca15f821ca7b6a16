//! RFC 3339 text to and from milliseconds since the Unix epoch, without chrono.
//!
//! The admin panel only reads times from the manager and shows them; this is
//! all it needs, at a fraction of chrono's code size in the wasm. Accepts what
//! the contract sends and what chrono's `parse_from_rfc3339` accepts for it:
//! `T`, `t` or a space between date and time, any number of fractional digits
//! (truncated to milliseconds), a leap second `:60`, and `Z`, `z` or `±HH:MM`.

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Parses an RFC 3339 date-time; `None` if it is not one.
pub(crate) fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    let year = number(head, 0, 4)?;
    let month = number(head, 5, 2)?;
    let day = number(head, 8, 2)?;
    let hour = number(head, 11, 2)?;
    let minute = number(head, 14, 2)?;
    let second = number(head, 17, 2)?;
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, byte)| head[at] != byte) || !matches!(head[10], b'T' | b't' | b' ') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }

    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }

    let offset_minutes = match *b.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let hours = number(b, at + 1, 2)?;
            let minutes = number(b, at + 4, 2)?;
            if b.get(at + 3) != Some(&b':') || hours > 23 || minutes > 59 {
                return None;
            }
            at += 6;
            let offset = hours * 60 + minutes;
            if sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    if at != b.len() {
        return None;
    }

    let seconds = ((hour * 60 + minute - offset_minutes) * 60) + second;
    Some(days_from_civil(year, month, day) * MILLIS_PER_DAY + seconds * 1000 + millis)
}

/// `2017-04-04T05:16:21.407Z` for years 0 to 9999 (the four digits RFC 3339 has).
pub(crate) fn format(millis: i64) -> String {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let of_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3_600_000, 2, b':'),
        (of_day / 60_000 % 60, 2, b':'),
        (of_day / 1000 % 60, 2, b'.'),
        (of_day % 1000, 3, b'Z'),
    ];
    let mut text = Vec::with_capacity(24);
    for (value, width, after) in fields {
        let mut divisor = 10_i64.pow(width - 1);
        while divisor > 0 {
            text.push(b'0' + (value / divisor % 10) as u8);
            divisor /= 10;
        }
        text.push(after);
    }
    // Only ASCII digits and separators were pushed.
    String::from_utf8(text).unwrap_or_default()
}

/// `width` ASCII digits at `at` as a number.
fn number(bytes: &[u8], at: usize, width: usize) -> Option<i64> {
    let digits = bytes.get(at..at + width)?;
    digits.iter().try_fold(0, |value, &digit| digit.is_ascii_digit().then(|| value * 10 + i64::from(digit - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat};

    use super::*;

    /// What chrono makes of the text, in milliseconds (as `Timestamp` stores it with chrono).
    fn chrono_millis(text: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(text).ok().map(|at| at.timestamp_millis())
    }

    #[test]
    fn parses_like_chrono() {
        let texts = [
            "2017-04-04T05:16:21.407Z",
            "2017-04-04T05:16:21Z",
            "2017-04-04t05:16:21.4z",
            "2017-04-04 05:16:21.407123456789+00:00",
            "2017-04-04T07:16:21.407+02:00",
            "2017-04-04T01:16:21.407-04:30",
            "1969-12-31T23:59:59.999Z",
            "1900-02-28T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2016-12-31T23:59:60.500Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999+23:59",
            "2017-04-04T05:16:21.407-00:00",
        ];
        for text in texts {
            assert_eq!(parse(text), chrono_millis(text), "{text}");
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn rejects_what_chrono_rejects() {
        let texts = [
            "",
            "yesterday",
            "2017-04-04",
            "2017-04-04T05:16:21",
            "2017-04-04T05:16:21.Z",
            "2017-02-29T05:16:21Z",
            "1900-02-29T05:16:21Z",
            "2017-13-04T05:16:21Z",
            "2017-00-04T05:16:21Z",
            "2017-04-00T05:16:21Z",
            "2017-04-31T05:16:21Z",
            "2017-04-04T24:00:00Z",
            "2017-04-04T05:60:21Z",
            "2017-04-04T05:16:61Z",
            "2017-04-04T05:16:21+24:00",
            "2017-04-04T05:16:21+02:60",
            "2017-04-04T05:16:21+0200",
            "2017-04-04T05:16:21Z ",
            "2017-04-04X05:16:21Z",
            "2017/04/04T05:16:21Z",
            "+2017-04-04T05:16:21Z",
            "2017-04-04T05:16:21.407Zjunk",
        ];
        for text in texts {
            assert_eq!(parse(text), None, "{text}");
            assert_eq!(chrono_millis(text), None, "{text}");
        }
    }

    #[test]
    fn formats_like_chrono() {
        let mut millis: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
        let last = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        while millis <= last {
            let chrono = DateTime::from_timestamp_millis(millis).unwrap();
            assert_eq!(format(millis), chrono.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(parse(&format(millis)), Some(millis));
            millis += 7_777_777_777; // about 90 days and an odd time of day
        }
        assert_eq!(format(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format(last), "9999-12-31T23:59:59.999Z");
    }
}
