//! A program's output as lines: what it writes to stdout and stderr becomes
//! [`OutputLine`]s, each stamped with the time the manager read it.

use std::io;
use std::mem;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The longest line kept as one: a longer one is split into pieces of at most
/// this many bytes (cut at a character boundary), each its own line, so that
/// nothing is lost and a program without newlines cannot grow one line
/// without bound in the manager's memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// After the program ended, how long the readers still wait for output in
/// total. What was written before the end is already in the pipe and is read
/// at once; only a process that left the group on purpose can still hold the
/// pipe open, and the execution must not wait for it forever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Which of the program's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a program wrote, without its line end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    /// When the manager read it.
    pub at: Timestamp,
    /// Where the program wrote it.
    pub stream: Stream,
    /// The text; invalid UTF-8 and NUL bytes replaced by U+FFFD ([`line_text`]).
    pub line: String,
}

/// A line's bytes as text that every store holds: each invalid UTF-8
/// sequence becomes U+FFFD (as `String::from_utf8_lossy` does), and so does
/// each NUL byte, which PostgreSQL's text cannot hold (SPEC §8). The rest of
/// the line is kept as written.
pub(crate) fn line_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// Reads `pipe` line by line into `output` until the end of the pipe, or until
/// the program has ended (`exited`) and no more output came within
/// [`DRAIN_AFTER_EXIT`]. Waiting for `output` to take a line is backpressure,
/// not silence: it never counts against that time, so no line is dropped
/// because the consumer was slow. If the consumer is gone the pipe is still
/// drained, so the program never blocks on a full pipe.
pub(crate) async fn read_lines<R: AsyncRead + Unpin>(
    pipe: R,
    stream: Stream,
    output: &mpsc::Sender<OutputLine>,
    exited: &CancellationToken,
) {
    let mut lines = LineReader::new(pipe);
    let mut drain_left = DRAIN_AFTER_EXIT;
    let mut consumer_gone = false;
    loop {
        let next = if exited.is_cancelled() {
            let started = Instant::now();
            let next = tokio::time::timeout(drain_left, lines.next_line()).await;
            drain_left = drain_left.saturating_sub(started.elapsed());
            match next {
                Ok(next) => next,
                Err(_) => {
                    tracing::debug!(
                        ?stream,
                        "stopped reading the output of an ended program: a process left its group"
                    );
                    return;
                }
            }
        } else {
            tokio::select! {
                next = lines.next_line() => next,
                // `next_line` is cancel-safe: a partial line stays in the reader.
                () = exited.cancelled() => continue,
            }
        };
        match next {
            Ok(Some(bytes)) => {
                if consumer_gone {
                    continue;
                }
                let line = OutputLine { at: Timestamp::now(), stream, line: line_text(&bytes) };
                consumer_gone = output.send(line).await.is_err();
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(?stream, %error, "cannot read a program's output");
                return;
            }
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`].
pub(crate) struct LineReader<R> {
    reader: BufReader<R>,
    /// The start of a line whose end has not arrived yet.
    pending: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines from `reader`.
    pub(crate) fn new(reader: R) -> Self {
        Self { reader: BufReader::with_capacity(MAX_LINE_BYTES, reader), pending: Vec::new() }
    }

    /// The next line without its `\n` (or `\r\n`), or `None` at the end of the
    /// input; a last line without a line end is still a line.
    ///
    /// Cancel-safe: the only await is `fill_buf`, which consumes nothing, and
    /// what was taken from the buffer is kept in `pending` across calls.
    pub(crate) async fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok((!self.pending.is_empty()).then(|| mem::take(&mut self.pending)));
            }
            let room = MAX_LINE_BYTES - self.pending.len();
            // One byte more than there is room for: a line of exactly the
            // limit followed by its `\n` is one line, not a piece and an empty line.
            let window = &available[..available.len().min(room + 1)];
            if let Some(end) = window.iter().position(|&byte| byte == b'\n') {
                self.pending.extend_from_slice(&window[..end]);
                self.reader.consume(end + 1);
                let mut line = mem::take(&mut self.pending);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if room == 0 {
                let cut = char_boundary(&self.pending);
                let rest = self.pending.split_off(cut);
                return Ok(Some(mem::replace(&mut self.pending, rest)));
            }
            let taken = window.len().min(room);
            self.pending.extend_from_slice(&window[..taken]);
            self.reader.consume(taken);
        }
    }
}

/// Where to cut `bytes` so that a UTF-8 character cut short at its end moves
/// to the next piece instead of becoming two replacement characters.
fn char_boundary(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(4) {
        let start = bytes.len() - back;
        let byte = bytes[start];
        // A continuation byte (10xxxxxx): keep looking for the character's start.
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let length = match byte {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        // A cut before position 0 would make an empty piece and no progress.
        return if length > back && start > 0 { start } else { bytes.len() };
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = LineReader::new(input);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await.expect("read") {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn lines_lose_their_line_ends_and_a_last_partial_line_is_kept() {
        let lines = lines_of(b"one\r\ntwo\n\nlast").await;
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec(), b"".to_vec(), b"last".to_vec()]);
        assert!(lines_of(b"").await.is_empty());
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_split_not_truncated() {
        let long = vec![b'a'; MAX_LINE_BYTES * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&input).await;
        let lengths: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 4]);
        assert_eq!(lines[..3].concat(), long);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_one_line() {
        let mut input = vec![b'b'; MAX_LINE_BYTES];
        input.extend_from_slice(b"\nnext\n");
        let lengths: Vec<usize> = lines_of(&input).await.iter().map(Vec::len).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES, 4]);
    }

    #[tokio::test]
    async fn a_split_never_cuts_a_character_in_two() {
        // "é" is two bytes; with one ASCII byte first, a piece boundary falls inside an "é".
        let mut input = b"x".to_vec();
        input.extend_from_slice("é".repeat(MAX_LINE_BYTES).as_bytes());
        let lines = lines_of(&input).await;
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(line.len() <= MAX_LINE_BYTES);
            assert!(std::str::from_utf8(line).is_ok(), "a piece is not valid UTF-8");
        }
        assert_eq!(lines.concat(), input);
    }

    #[test]
    fn invalid_utf8_and_nul_bytes_become_replacement_characters() {
        assert_eq!(line_text(b"a\0b"), "a\u{FFFD}b");
        assert_eq!(line_text(b"c\xFFd"), "c\u{FFFD}d");
        assert_eq!(line_text(b"e\xC3"), "e\u{FFFD}", "a character cut short");
        assert_eq!(line_text("\0\0é".as_bytes()), "\u{FFFD}\u{FFFD}é");
        assert_eq!(line_text(b"plain"), "plain");
    }

    #[test]
    fn char_boundaries() {
        assert_eq!(char_boundary(b"abc"), 3);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"a€".as_bytes()[..3]), 1);
        assert_eq!(char_boundary(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(char_boundary(&[0xFF, 0xFF]), 2);
        assert_eq!(char_boundary(&[0xE2, 0x82]), 2);
    }
}
