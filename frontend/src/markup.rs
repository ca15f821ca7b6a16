//! HTML written as text, for lists the panel shows whole again after each
//! read (the windows, the history, the timeline picture, the webhooks): a table body as one
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

/// Appends `template` with each `{}` replaced by the next of `values`,
/// escaped; a template holds no other `{`. One call per row costs the
/// panel less than a `format!` or a [`cell`] per value.
pub fn fill(html: &mut String, template: &str, values: &[&str]) {
    // A byte scan: `split` or `find` would link in a searcher of their own.
    let (mut rest, mut values) = (template, values.iter());
    while let Some(at) = rest.bytes().position(|byte| byte == b'{') {
        html.push_str(&rest[..at]);
        html.push_str(&escape(values.next().copied().unwrap_or_default()));
        rest = rest.get(at + 2..).unwrap_or_default();
    }
    html.push_str(rest);
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

    #[test]
    fn a_template_takes_its_values_in_order_escaped() {
        let mut html = String::from("<ul>");
        fill(&mut html, "<li data-id=\"{}\">{} and {}</li>", &["7\"", "<b>", "more"]);
        assert_eq!(html, "<ul><li data-id=\"7&quot;\">&lt;b&gt; and more</li>");
        fill(&mut html, "{}{}", &["x"]);
        assert!(html.ends_with("</li>x"), "a missing value is empty: {html}");
    }
}
