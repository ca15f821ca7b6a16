//! The History page's picture of recent maintenance: one axis of days, a
//! lane of windows and a lane of the periods maintenance mode was on, drawn
//! as SVG markup by the panel itself (no chart library), with a tooltip per
//! bar and the same bars as a list for screen readers. Pure functions of
//! milliseconds, integer arithmetic only; the page supplies the words.

use crate::markup::escape;

/// The picture's width in SVG units (it scales to the card).
const WIDTH: i64 = 1000;
/// Where the axis begins: the lanes' names are left of it.
const LEFT: i64 = 130;
/// Room right of the axis's end (for the last day's label).
const RIGHT: i64 = 40;
/// Where the axis line is drawn.
const AXIS_Y: i64 = 68;

/// One bar: a window, or a period of maintenance mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Its start, in milliseconds since the epoch.
    pub from: i64,
    /// Its end, in milliseconds since the epoch.
    pub to: i64,
    /// `true`: a period of maintenance mode; `false`: a window.
    pub period: bool,
    /// Its class and `data-state`: the window's state, or `on`.
    pub state: &'static str,
    /// What it is in words: its tooltip and its line in the list.
    pub words: String,
}

/// The periods maintenance mode was on, as (start, end), oldest first, from
/// the history rows as the API lists them (newest first): `(at, was on, is on)`.
/// `None` as a start: it was already on before the oldest row; as an end: it is still on.
pub fn periods(rows: &[(i64, bool, bool)]) -> Vec<(Option<i64>, Option<i64>)> {
    let mut periods = Vec::new();
    let mut since = None;
    for &(at, was_on, is_on) in rows.iter().rev() {
        match (was_on, is_on) {
            (false, true) => since = Some(at),
            (true, false) => periods.push((since.take(), Some(at))),
            _ => {}
        }
    }
    // Still on: either it began with a row read, or before them all.
    let on_now = rows.first().is_some_and(|&(_, _, is_on)| is_on);
    if on_now {
        periods.push((since, None));
    }
    periods
}

/// The SVG markup of `bars` on an axis from `from` to `to` (milliseconds),
/// with a tick at each of `ticks` (labelled when it has words), then a list of
/// the bars drawn, for screen readers. Bars wholly outside the axis are left out.
pub fn picture(bars: &[Bar], ticks: &[(i64, String)], from: i64, to: i64) -> String {
    let span = (to - from).max(1);
    let x = |at: i64| LEFT + (at.clamp(from, to) - from) * (WIDTH - LEFT - RIGHT) / span;
    let shown: Vec<&Bar> = bars.iter().filter(|bar| bar.to >= from && bar.from <= to).collect();
    let windows = shown.iter().filter(|bar| !bar.period).count();
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} 100\" role=\"img\" aria-label=\"The last 30 days: {windows} \
         window(s) and {} period(s) of maintenance mode, listed below\">\
         <text x=\"0\" y=\"25\">Windows</text><text x=\"0\" y=\"55\">Maintenance on</text>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{AXIS_Y}\" x2=\"{}\" y2=\"{AXIS_Y}\"/>",
        shown.len() - windows,
        WIDTH - RIGHT,
    );
    for (at, label) in ticks.iter().filter(|(at, _)| (from..=to).contains(at)) {
        let tick = x(*at);
        svg.push_str(&format!(
            "<line class=\"tick\" x1=\"{tick}\" y1=\"{AXIS_Y}\" x2=\"{tick}\" y2=\"{}\"/>",
            AXIS_Y + 5
        ));
        if !label.is_empty() {
            svg.push_str(&format!("<text class=\"day\" x=\"{tick}\" y=\"94\">{}</text>", escape(label)));
        }
    }
    let mut list = String::from("<ul class=\"visually-hidden\">");
    for bar in &shown {
        let (left, y) = (x(bar.from), if bar.period { 38 } else { 8 });
        let words = escape(&bar.words);
        svg.push_str(&format!(
            "<rect class=\"bar {0}\" data-state=\"{0}\" x=\"{left}\" y=\"{y}\" width=\"{1}\" height=\"22\">\
             <title>{words}</title></rect>",
            bar.state,
            (x(bar.to) - left).max(3),
        ));
        list.push_str(&format!("<li>{words}</li>"));
    }
    svg.push_str("</svg>");
    if shown.is_empty() {
        list.push_str("<li>Nothing in the last 30 days.</li>");
    }
    svg.push_str(&list);
    svg.push_str("</ul>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn bar(from: i64, to: i64, period: bool, words: &str) -> Bar {
        Bar { from, to, period, state: if period { "on" } else { "ended" }, words: words.into() }
    }

    #[test]
    fn periods_run_from_each_activate_to_the_next_deactivate() {
        // Newest first, as the API lists them: on at 10 (activating), 12 (activated), off at 20; on again at 30.
        let rows = [(30, false, true), (20, true, false), (12, true, true), (10, false, true)];
        assert_eq!(periods(&rows), [(Some(10), Some(20)), (Some(30), None)]);
        // The oldest row read ends a period that began before it.
        assert_eq!(periods(&[(20, true, false)]), [(None, Some(20))]);
        assert_eq!(periods(&[(20, true, true)]), [(None, None)], "on before and after the only row");
        assert_eq!(periods(&[]), []);
    }

    #[test]
    fn bars_are_placed_on_the_axis_in_whole_units_and_clipped_to_it() {
        let (from, to) = (0, 30 * DAY);
        let bars = [
            bar(15 * DAY, 18 * DAY, false, "a window"),
            bar(-5 * DAY, DAY, true, "on from before the axis"),
            bar(-9 * DAY, -8 * DAY, false, "long ago"),
        ];
        let svg = picture(&bars, &[], from, to);
        // 830 units for 30 days: day 15 is at 130 + 415, three days are 83 units.
        assert!(svg.contains(r#"data-state="ended" x="545" y="8" width="83""#), "{svg}");
        assert!(svg.contains(r#"data-state="on" x="130" y="38" width="27""#), "{svg}");
        assert!(!svg.contains("long ago"), "a bar wholly before the axis is left out: {svg}");
        assert!(svg.contains("1 window(s) and 1 period(s)"), "{svg}");
        assert!(svg.contains("<li>a window</li><li>on from before the axis</li></ul>"), "{svg}");
    }

    #[test]
    fn a_short_bar_stays_visible_and_ticks_are_drawn_within_the_axis() {
        let ticks = [(0, "1 Dec".to_owned()), (DAY, String::new()), (31 * DAY, "late".to_owned())];
        let svg = picture(&[bar(DAY, DAY + 1, false, "a minute")], &ticks, 0, 30 * DAY);
        assert!(svg.contains(r#"width="3""#), "{svg}");
        assert!(svg.contains(r#"<text class="day" x="130" y="94">1 Dec</text>"#), "{svg}");
        assert_eq!(svg.matches("class=\"tick\"").count(), 2, "the tick past the axis is left out: {svg}");
        assert!(!svg.contains("late"));
    }

    #[test]
    fn words_are_escaped_and_an_empty_picture_says_so() {
        let svg = picture(&[bar(DAY, 2 * DAY, false, r#"<b>"x" & y</b>"#)], &[], 0, 30 * DAY);
        assert!(svg.contains("<title>&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;</title>"), "{svg}");
        assert!(picture(&[], &[], 0, 30 * DAY).contains("<li>Nothing in the last 30 days.</li>"));
    }
}
