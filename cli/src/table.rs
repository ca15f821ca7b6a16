//! Cloudify's tables, reproduced so that our lines equal its client's: the
//! cell rules of `cloudify_cli/table.py` (timestamps without `T`/`Z`, empty
//! values blank, Python's `str` of the rest) and its vendored PrettyTable
//! (centred cells, long cells wrapped like Python's `textwrap.fill`).

use serde_json::{Map, Value};

/// What a column shows for `value` (`get_values_per_column`): a missing
/// field is `N/A`, an empty or null one blank, a timestamp without `T` and `Z`.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None => "N/A".to_owned(),
        Some(Value::String(text)) if !text.is_empty() => timestamp(text).unwrap_or_else(|| text.clone()),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(python_str).collect::<Vec<_>>().join(","),
        Some(Value::Bool(flag)) => python_str(&Value::Bool(*flag)),
        // Python keeps an int even when it is 0, but a float 0.0 is falsy: blank.
        Some(Value::Number(number)) if number.as_f64() == Some(0.0) && !(number.is_i64() || number.is_u64()) => {
            String::new()
        }
        Some(Value::Number(number)) => python_str(&Value::Number(number.clone())),
        Some(Value::Object(object)) if !object.is_empty() => python_str(&Value::Object(object.clone())),
        Some(_) => String::new(),
    }
}

/// `get_timestamp`: text starting with a `YYYY-MM-DD` date, with `T` and `Z`
/// each replaced by a space (so `…:21.407Z` ends in a space, as Cloudify's does).
pub fn timestamp(text: &str) -> Option<String> {
    let date: String = text.chars().take(10).collect();
    // `strptime('%Y-%m-%d')` checks the calendar: 2024-02-30 is not a date.
    let well_formed = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    let date = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok().filter(|_| well_formed);
    date.map(|_| text.replace(['T', 'Z'], " "))
}

/// PrettyTable's `_str_block_width`: how many columns `text` takes on a
/// terminal (East Asian wide characters 2, combining marks 0; colour codes
/// stripped).
pub fn block_width(text: &str) -> usize {
    let mut width: isize = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\u{1b}[") {
            // An ANSI colour code: `ESC [ digits and ; m`.
            let end = after.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            if let Some(end) = end.filter(|end| after[*end..].starts_with('m')) {
                rest = &after[end + 1..];
                continue;
            }
        }
        width += char_width(c);
        rest = &rest[c.len_utf8()..];
    }
    usize::try_from(width).unwrap_or(0)
}

/// PrettyTable's `_char_block_width`, in its order.
fn char_width(c: char) -> isize {
    let code = c as u32;
    match code {
        0x21..=0x7e => 1,
        0x4e00..=0x9fff | 0xac00..=0xd7af => 2,
        // `unicodedata.combining`: the combining-mark blocks.
        0x0300..=0x036f | 0x1ab0..=0x1aff | 0x1dc0..=0x1dff | 0x20d0..=0x20ff | 0xfe20..=0xfe2f => 0,
        0x3040..=0x309f | 0x30a0..=0x30ff | 0xff01..=0xff60 | 0x3000..=0x303e => 2,
        0x08 | 0x7f => -1,
        0x00 | 0x1f => 0,
        _ => 1,
    }
}

/// Python's `str()` of a JSON value as Cloudify's client holds it (`True`,
/// `None`, `1.0`, `{'a': [1, 2]}`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(whole), _, _) => whole.to_string(),
            (None, Some(whole), _) => whole.to_string(),
            (None, None, Some(float)) => python_float(float),
            _ => number.to_string(),
        },
        Value::String(text) => python_str_repr(text),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(object) => format!(
            "{{{}}}",
            object
                .iter()
                .map(|(key, value)| format!("{}: {}", python_str_repr(key), python_repr(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr(float)`: the shortest text that reads back, scientific below
/// 1e-4 and from 1e16, and a whole number keeps its `.0`.
fn python_float(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = exponent.strip_prefix('-').map_or(("+", exponent), |digits| ("-", digits));
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let text = value.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Python's `repr(str)`: single quotes unless the text holds one and no double quote.
fn python_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `print_data` (and `print_single`): an empty line, the title, the table, an empty line.
pub fn print_data(
    columns: &[&str],
    labels: &[(&str, &str)],
    items: &[Map<String, Value>],
    title: &str,
    max_width: Option<usize>,
) -> Vec<String> {
    let headers: Vec<&str> = columns
        .iter()
        .map(|column| labels.iter().find(|(name, _)| name == column).map_or(*column, |(_, label)| *label))
        .collect();
    let rows: Vec<Vec<String>> =
        items.iter().map(|item| columns.iter().map(|column| cell(item.get(*column))).collect()).collect();
    let mut lines = vec![String::new(), title.to_owned()];
    lines.extend(pretty_table(&headers, &rows, max_width));
    lines.push(String::new());
    lines
}

/// `format_json_output` (`--json` lists): `[`, one object per line with
/// just the table's columns (labels applied), `]`.
pub fn json_lines(columns: &[&str], labels: &[(&str, &str)], items: &[Map<String, Value>]) -> Vec<String> {
    let mut lines = vec!["[".to_owned()];
    let objects: Vec<String> = items.iter().map(|item| json_object(columns, labels, item)).collect();
    if !objects.is_empty() {
        lines.push(objects.join(",\n"));
    }
    lines.push("]".to_owned());
    lines
}

/// `format_json_object`: the columns of `item` (labels applied) as Python's
/// `json.dumps` writes them.
pub fn json_object(columns: &[&str], labels: &[(&str, &str)], item: &Map<String, Value>) -> String {
    let fields: Vec<String> = columns
        .iter()
        .map(|column| {
            let label = labels.iter().find(|(name, _)| name == column).map_or(*column, |(_, label)| *label);
            let value = item.get(*column).unwrap_or(&Value::Null);
            format!("{}: {}", python_json(&Value::String(label.to_owned())), python_json(value))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// Python's `json.dumps` with its defaults: `", "` and `": "` between items,
/// non-ASCII escaped as `\uXXXX`, floats as `repr`.
pub fn python_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(_) => python_repr(value),
        Value::String(text) => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('"');
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (' '..='~').contains(&c) => out.push(c),
                    c => {
                        let mut units = [0_u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("[{}]", items.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        Value::Object(object) => format!(
            "{{{}}}",
            object
                .iter()
                .map(|(key, value)| format!("{}: {}", python_json(&Value::String(key.clone())), python_json(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `print_details`: the title, then each field as `\tname:<padding> value`.
pub fn print_details(data: &Map<String, Value>, title: &str) -> Vec<String> {
    let mut lines = vec![title.to_owned()];
    let width = data.keys().map(|key| key.chars().count()).max().unwrap_or(0) + 5;
    for (key, value) in data {
        let text = python_str(value);
        let text = timestamp(&text).unwrap_or(text);
        lines.push(format!("\t{:<width$} {text}", format!("{key}:")));
    }
    lines
}

/// PrettyTable's default table: `+---+` rules, a centred header, centred
/// cells; a cell wider than `max_width` (the header always fits) is wrapped.
pub fn pretty_table(headers: &[&str], rows: &[Vec<String>], max_width: Option<usize>) -> Vec<String> {
    let width_of = |text: &str| text.split('\n').map(block_width).max().unwrap_or(0);
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(index, header)| {
            rows.iter()
                .map(|row| {
                    let wide = width_of(&row[index]);
                    max_width.map_or(wide, |max| wide.min(max))
                })
                .fold(block_width(header), usize::max)
        })
        .collect();
    let rule = format!("+{}+", widths.iter().map(|width| "-".repeat(width + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: &[&str]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!(" {} ", center(cell, *width))).collect();
        format!("|{}|", padded.join("|"))
    };
    let mut lines = vec![rule.clone(), line(headers), rule.clone()];
    for row in rows {
        let cells: Vec<Vec<String>> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                cell.split('\n')
                    .flat_map(
                        |part| {
                            if block_width(part) > *width {
                                wrap(part, *width)
                            } else {
                                vec![part.to_owned()]
                            }
                        },
                    )
                    .collect()
            })
            .collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for y in 0..height {
            let parts: Vec<&str> = cells.iter().map(|lines| lines.get(y).map_or("", String::as_str)).collect();
            lines.push(line(&parts));
        }
    }
    lines.push(rule);
    lines
}

/// `str.center`, as PrettyTable pads: odd spare space goes right of an
/// odd-length text and left of an even-length one.
fn center(text: &str, width: usize) -> String {
    let length = block_width(text);
    let excess = width.saturating_sub(length);
    let (left, right) = if excess.is_multiple_of(2) {
        (excess / 2, excess / 2)
    } else if length % 2 == 1 {
        (excess / 2, excess / 2 + 1)
    } else {
        (excess / 2 + 1, excess / 2)
    };
    format!("{}{text}{}", " ".repeat(left), " ".repeat(right))
}

/// Python's `textwrap.wrap(text, width)` with its defaults: words split at
/// whitespace and after hyphens between letters, greedy lines, whitespace
/// dropped at line ends, words longer than a line broken.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    // Only these become spaces (`replace_whitespace`): not NBSP, not U+3000.
    let text: String = expand_tabs(text)
        .chars()
        .map(|c| if matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r') { ' ' } else { c })
        .collect();
    let mut chunks: Vec<String> = split_chunks(&text);
    chunks.reverse();
    let mut lines: Vec<String> = Vec::new();
    let blank = |chunk: &str| chunk.trim().is_empty();
    while !chunks.is_empty() {
        let mut line: Vec<String> = Vec::new();
        let mut length = 0;
        if chunks.last().is_some_and(|chunk| blank(chunk)) && !lines.is_empty() {
            chunks.pop();
        }
        while let Some(chunk) = chunks.last() {
            let size = chunk.chars().count();
            if length + size > width {
                break;
            }
            length += size;
            line.push(chunks.pop().unwrap_or_default());
        }
        if let Some(chunk) = chunks.last_mut() {
            let size = chunk.chars().count();
            if size > width {
                let room = if width < 1 { 1 } else { width - length };
                let characters: Vec<char> = chunk.chars().collect();
                let mut end = room;
                if size > room {
                    let hyphen = characters[..room.min(size)].iter().rposition(|c| *c == '-');
                    if let Some(hyphen) = hyphen.filter(|at| *at > 0 && characters[..*at].iter().any(|c| *c != '-')) {
                        end = hyphen + 1;
                    }
                }
                line.push(characters[..end].iter().collect());
                *chunk = characters[end..].iter().collect();
            }
        }
        if line.last().is_some_and(|chunk| blank(chunk)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat());
        }
    }
    lines
}

fn expand_tabs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0;
    for c in text.chars() {
        if c == '\t' {
            let spaces = 8 - column % 8;
            out.push_str(&" ".repeat(spaces));
            column += spaces;
        } else {
            out.push(c);
            column = if c == '\n' { 0 } else { column + 1 };
        }
    }
    out
}

/// `TextWrapper.wordsep_re`'s chunks: runs of spaces; an em-dash (`--` or
/// more) between a word character and a word; and words cut after a hyphen
/// that has two letters before it and a letter (and another letter, maybe
/// after one more hyphen) after it.
fn split_chunks(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    let letter = |at: usize| characters.get(at).is_some_and(|c| c.is_alphabetic() || *c == '_');
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < characters.len() {
        // A run of `c` from `index`: where it ends.
        let run_end =
            |c: char| characters[index..].iter().position(|x| *x != c).map_or(characters.len(), |n| index + n);
        // Spaces; and `(?<=[\w!"'&.,?]) -{2,} (?=\w)`: both are chunks of their own.
        let run = match characters[index] {
            ' ' => Some(run_end(' ')),
            '-' if index > 0 && is_word_punct(characters[index - 1]) => {
                let end = run_end('-');
                let followed = characters.get(end).is_some_and(|c| c.is_alphanumeric() || *c == '_');
                (end - index >= 2 && followed).then_some(end)
            }
            _ => None,
        };
        if let Some(end) = run {
            if start < index {
                chunks.push(characters[start..index].iter().collect());
            }
            chunks.push(characters[index..end].iter().collect());
            start = end;
            index = end;
            continue;
        }
        if characters[index] == '-' && index > start {
            let before = (index >= 2 && letter(index - 1) && letter(index - 2))
                || (index >= 3 && letter(index - 1) && characters[index - 2] == '-' && letter(index - 3));
            let after = letter(index + 1)
                && (letter(index + 2) || (characters.get(index + 2) == Some(&'-') && letter(index + 3)));
            if before && after {
                chunks.push(characters[start..=index].iter().collect());
                start = index + 1;
            }
        }
        index += 1;
    }
    if start < characters.len() {
        chunks.push(characters[start..].iter().collect());
    }
    chunks
}

/// `[\w!"'&.,?]`: what may come before an em-dash.
fn is_word_punct(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '!' | '"' | '\'' | '&' | '.' | ',' | '?')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_follow_cloudifys_rules() {
        assert_eq!(cell(None), "N/A");
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(Some(&json!(""))), "");
        assert_eq!(cell(Some(&json!(false))), "False");
        assert_eq!(cell(Some(&json!(0))), "0");
        assert_eq!(cell(Some(&json!("2017-04-04T05:16:21.407Z"))), "2017-04-04 05:16:21.407 ");
        assert_eq!(cell(Some(&json!("web"))), "web");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a,b");
    }

    #[test]
    fn python_str_matches_python() {
        assert_eq!(python_str(&json!(1.0)), "1.0");
        assert_eq!(python_str(&json!(0.25)), "0.25");
        assert_eq!(python_str(&json!(1e16)), "1e+16");
        assert_eq!(python_str(&json!(0.00001)), "1e-05");
        assert_eq!(python_str(&json!({"a": [1, "x'y", null, true]})), "{'a': [1, \"x'y\", None, True]}");
    }

    #[test]
    fn centring_puts_the_odd_space_where_str_center_does() {
        assert_eq!(center("id", 5), "  id ");
        assert_eq!(center("web", 6), " web  ");
        assert_eq!(center("status", 9), "  status ");
    }

    #[test]
    fn a_table_looks_like_prettytables() {
        let lines = pretty_table(&["id", "status"], &[vec!["1".into(), "completed".into()]], None);
        assert_eq!(
            lines,
            [
                "+----+-----------+",
                "| id |   status  |",
                "+----+-----------+",
                "| 1  | completed |",
                "+----+-----------+",
            ]
        );
    }

    #[test]
    fn wrapping_matches_textwrap() {
        // Expected values from Python 3.11's textwrap.wrap.
        assert_eq!(
            wrap("The manager stopped while this execution was started; it was marked failed", 20),
            ["The manager stopped", "while this execution", "was started; it was", "marked failed"]
        );
        assert_eq!(wrap("a force-cancel was sent", 9), ["a force-", "cancel", "was sent"]);
        assert_eq!(wrap("abcdefghijklmnop", 5), ["abcde", "fghij", "klmno", "p"]);
        assert_eq!(wrap("2026-11-30T10:55:25.413Z later", 10), ["2026-11-", "30T10:55:2", "5.413Z", "later"]);
        assert_eq!(wrap("xxxxxxxx alpha--beta", 15), ["xxxxxxxx alpha", "--beta"]);
        assert_eq!(wrap("aaaa alpha--beta", 12), ["aaaa alpha--", "beta"]);
        assert_eq!(wrap("a\u{a0}b c\u{3000}d", 3), ["a\u{a0}b", "c\u{3000}d"]);
    }

    #[test]
    fn widths_count_wide_and_combining_characters_as_terminals_do() {
        assert_eq!(block_width("部署"), 4);
        assert_eq!(block_width("e\u{301}"), 1);
        assert_eq!(block_width("\u{1b}[31mred\u{1b}[0m"), 3);
        assert_eq!(center("部署", 7), "  部署 ");
    }

    #[test]
    fn json_is_written_as_pythons_json_dumps_writes_it() {
        let value = serde_json::json!({"a": [1, 2.5, null, true], "é\"\n": "部"});
        assert_eq!(python_json(&value), r#"{"a": [1, 2.5, null, true], "\u00e9\"\n": "\u90e8"}"#);
        let item = value.as_object().unwrap().clone();
        assert_eq!(
            json_lines(&["a", "b"], &[("a", "A")], &[item.clone(), item]),
            ["[", "{\"A\": [1, 2.5, null, true], \"b\": null},\n{\"A\": [1, 2.5, null, true], \"b\": null}", "]"]
        );
    }

    #[test]
    fn only_calendar_dates_read_as_timestamps() {
        assert_eq!(timestamp("2024-02-29T00:00:00Z"), Some("2024-02-29 00:00:00 ".into()));
        assert_eq!(timestamp("2024-02-30-Tokyo"), None);
        assert_eq!(cell(Some(&serde_json::json!(0.0))), "");
        assert_eq!(cell(Some(&serde_json::json!(0))), "0");
    }
}
