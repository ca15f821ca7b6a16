//! HTML written as text, for lists the panel shows whole again after each
//! read (the windows, the history, the timeline picture): a table body as one
//! string costs the panel far less wasm than a view per row. Every text that
//! came from outside goes through [`escape`].

/// Text made safe inside markup and attribute values.
pub fn escape(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => safe.push_str("&amp;"),
            '<' => safe.push_str("&lt;"),
            '>' => safe.push_str("&gt;"),
            '"' => safe.push_str("&quot;"),
            c => safe.push(c),
        }
    }
    safe
}

/// Appends a table cell holding `text`, escaped.
pub fn cell(html: &mut String, text: &str) {
    html.push_str("<td>");
    html.push_str(&escape(text));
    html.push_str("</td>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_cannot_become_markup() {
        assert_eq!(escape(r#"<b>"x" & y</b>"#), "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;");
        let mut row = String::new();
        cell(&mut row, "<img src=x onerror=alert(1)>");
        assert_eq!(row, "<td>&lt;img src=x onerror=alert(1)&gt;</td>");
    }
}
