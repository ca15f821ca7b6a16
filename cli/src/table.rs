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
        Some(Value::Number(number)) => python_str(&Value::Number(number.clone())),
        Some(Value::Object(object)) if !object.is_empty() => python_str(&Value::Object(object.clone())),
        Some(_) => String::new(),
    }
}

/// `get_timestamp`: text starting with a `YYYY-MM-DD` date, with `T` and `Z`
/// each replaced by a space (so `…:21.407Z` ends in a space, as Cloudify's does).
pub fn timestamp(text: &str) -> Option<String> {
    let date: Vec<char> = text.chars().take(10).collect();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part: String = date.get(range)?.iter().collect();
        part.chars().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (_year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let well_formed = date.len() == 10 && date[4] == '-' && date[7] == '-';
    (well_formed && (1..=12).contains(&month) && (1..=31).contains(&day)).then(|| text.replace(['T', 'Z'], " "))
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
    let width_of = |text: &str| text.split('\n').map(|line| line.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(index, header)| {
            rows.iter()
                .map(|row| {
                    let wide = width_of(&row[index]);
                    max_width.map_or(wide, |max| wide.min(max))
                })
                .fold(header.chars().count(), usize::max)
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
        let cells: Vec<Vec<String>> =
            row.iter()
                .zip(&widths)
                .map(|(cell, width)| {
                    cell.split('\n')
                        .flat_map(|part| {
                            if part.chars().count() > *width {
                                wrap(part, *width)
                            } else {
                                vec![part.to_owned()]
                            }
                        })
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
    let length = text.chars().count();
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
    let text: String = expand_tabs(text).chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
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

/// `TextWrapper.wordsep_re`'s chunks: runs of spaces, and words cut after a
/// hyphen that has two letters before it and a letter (and another letter,
/// maybe after one more hyphen) after it.
fn split_chunks(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    let letter = |at: usize| characters.get(at).is_some_and(|c| c.is_alphabetic() || *c == '_');
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < characters.len() {
        if characters[index] == ' ' {
            let end = characters[index..].iter().position(|c| *c != ' ').map_or(characters.len(), |n| index + n);
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
    }
}
