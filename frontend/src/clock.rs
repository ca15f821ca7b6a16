//! Times the browser's way: its clock, its time zone, and milliseconds as
//! integers. The browser parses and converts (js_sys::Date); the panel only
//! does integer arithmetic, so no float parsing or formatting is linked in.

use shared::Timestamp;
use wasm_bindgen::JsValue;

/// A second, in milliseconds.
pub const SECOND: i64 = 1000;
/// A day, in milliseconds.
pub const DAY: i64 = 86_400 * SECOND;

/// The browser's clock: milliseconds since the epoch.
pub fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// A timestamp as milliseconds since the epoch.
pub fn millis(at: &Timestamp) -> i64 {
    parse(&at.to_string())
}

/// An RFC 3339 time as milliseconds since the epoch (0 if it is not one).
pub fn parse(at: &str) -> i64 {
    js_sys::Date::parse(at) as i64
}

/// The local midnight that began today, in milliseconds: where the day ticks fall.
pub fn midnight() -> i64 {
    let today = js_sys::Date::new_0();
    today.set_hours(0);
    today.set_minutes(0);
    today.set_seconds(0);
    today.set_milliseconds(0);
    today.get_time() as i64
}

/// `at` (milliseconds) in the viewer's local time and format.
pub fn local(at: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
    date.to_locale_string("default", &JsValue::UNDEFINED).into()
}

/// An RFC 3339 time as the manager writes it, in the viewer's local time and format.
pub fn local_text(at: &str) -> String {
    local(parse(at))
}

/// The local date of `at` (milliseconds), in the viewer's format.
pub fn local_date(at: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
    date.to_locale_date_string("default", &JsValue::UNDEFINED).into()
}

/// The value of an `<input type="datetime-local">` (local time, e.g.
/// `2030-01-01T10:00`) as UTC; `None` for an empty or invalid value.
pub fn utc(local: &str) -> Option<Timestamp> {
    if local.is_empty() {
        return None;
    }
    // A date and time without an offset is local time to the browser.
    let date = js_sys::Date::new(&JsValue::from_str(local));
    // toISOString throws on an invalid date.
    if date.get_time().is_nan() {
        return None;
    }
    String::from(date.to_iso_string()).parse().ok()
}

/// A duration in words, to the second: `1 h 2 min 3 s`, `1 min 0 s`, `9 s`.
/// Partial seconds count as a whole one (a countdown shows `1 s` until it ends).
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let total = ms / SECOND + i64::from(ms % SECOND > 0);
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = String::new();
    if hours > 0 {
        text = format!("{hours} h ");
    }
    if total >= 60 {
        text.push_str(&format!("{minutes} min "));
    }
    text.push_str(&format!("{seconds} s"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_hours_minutes_and_seconds_rounded_up() {
        assert_eq!(duration(83 * SECOND), "1 min 23 s");
        assert_eq!(duration(60 * SECOND), "1 min 0 s");
        assert_eq!(duration(9 * SECOND), "9 s");
        assert_eq!(duration(1), "1 s", "a part of a second is shown as one");
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(-5 * SECOND), "0 s");
        assert_eq!(duration(3723 * SECOND), "1 h 2 min 3 s");
        assert_eq!(duration(3600 * SECOND), "1 h 0 min 0 s");
        assert!(duration(i64::MAX).ends_with(" s"), "no overflow");
    }
}
