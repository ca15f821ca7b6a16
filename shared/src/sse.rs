//! Reading the manager's Server-Sent Events (`GET /maintenance/events`), for
//! every client of the stream (the CLI, tests, the benchmarks).

/// One event: its name (`status`, `execution`, …) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent, as the SSE standard says).
    pub name: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
    /// The `id:` field, if the event has one (a `status` event's epoch).
    pub id: Option<String>,
}

/// Bytes of an event stream in, whole events out. Bytes are kept until a
/// block is complete, so a character split across network chunks is never
/// decoded in halves.
#[derive(Debug, Default)]
pub struct SseBuffer {
    bytes: Vec<u8>,
}

impl SseBuffer {
    /// Adds a chunk as it arrived from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
    }

    /// The next complete event, skipping blocks without data (keep-alive comments).
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let (length, separator) = block_end(&self.bytes)?;
            let block: Vec<u8> = self.bytes.drain(..length + separator).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block[..length])) {
                return Some(event);
            }
        }
    }
}

/// Where the first block ends: its length and the separator's (`\n\n` or `\r\n\r\n`).
fn block_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|window| window == needle);
    match (find(b"\n\n").map(|at| (at, 2)), find(b"\r\n\r\n").map(|at| (at, 4))) {
        (Some(lf), Some(crlf)) => Some(if lf.0 <= crlf.0 { lf } else { crlf }),
        (lf, crlf) => lf.or(crlf),
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut name = None;
    let mut id = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Some(SseEvent { name: name.unwrap_or_else(|| "message".into()), data: data?, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_whole_and_keep_alives_are_skipped() {
        let mut buffer = SseBuffer::default();
        buffer.push(b":keep-alive\n\nevent: status\ndata: {\"a\":");
        assert_eq!(buffer.next_event(), None, "the status block is not complete yet");
        buffer.push(b"1}\nid: 7\n\nevent: execution\r\ndata: x\r\ndata: y\r\n\r\n");
        let status = SseEvent { name: "status".into(), data: "{\"a\":1}".into(), id: Some("7".into()) };
        assert_eq!(buffer.next_event(), Some(status));
        assert_eq!(buffer.next_event(), Some(SseEvent { name: "execution".into(), data: "x\ny".into(), id: None }));
        assert_eq!(buffer.next_event(), None);
    }

    #[test]
    fn a_character_split_across_chunks_is_not_mangled() {
        let text = "event: status\ndata: {\"reason\":\"café\"}\n\n".as_bytes();
        let split = text.iter().position(|&b| b == 0xC3).unwrap() + 1;
        let mut buffer = SseBuffer::default();
        buffer.push(&text[..split]);
        buffer.push(&text[split..]);
        assert_eq!(buffer.next_event().unwrap().data, "{\"reason\":\"café\"}");
    }

    #[test]
    fn unnamed_events_are_messages() {
        let mut buffer = SseBuffer::default();
        buffer.push(b"data: hi\n\n");
        assert_eq!(buffer.next_event(), Some(SseEvent { name: "message".into(), data: "hi".into(), id: None }));
    }
}
