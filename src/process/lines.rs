//! Line-by-line reading of a child's output that never fails on bad UTF-8 and passes
//! each line on as soon as its newline arrives, and the bound on lines on their way
//! to the loop.
//!
//! `next` is cancel-safe, so it can race other readers in `tokio::select!`: bytes of a
//! line read before a cancellation stay in the buffer and the next call goes on from
//! there.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// A line longer than this is passed on in pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// Output lines sent to the loop and not yet taken by it, in bytes (each line counts
/// [`LINE_COST`] more, for what it costs besides its text). One count for every app
/// and build: the loop is one.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Past this, readers drop lines instead of sending them (the app is never slowed).
pub const IN_FLIGHT_MAX: usize = 2 * 1024 * 1024;
const LINE_COST: usize = 128;

/// Lines a reader dropped because the loop was behind, said once it caught up.
#[derive(Debug, Default)]
pub struct Throttle {
    dropped: usize,
}

impl Throttle {
    /// Whether `line` may be sent to the loop now (it is counted in flight if so).
    pub fn admit(&mut self, line: &str) -> bool {
        let cost = line.len() + LINE_COST;
        if IN_FLIGHT.load(Ordering::Relaxed) + cost > IN_FLIGHT_MAX {
            self.dropped += 1;
            return false;
        }
        IN_FLIGHT.fetch_add(cost, Ordering::Relaxed);
        true
    }

    /// How many lines were dropped since the last call.
    pub fn take_dropped(&mut self) -> usize {
        std::mem::take(&mut self.dropped)
    }
}

/// The loop took `line` (sent after [`Throttle::admit`]).
pub fn taken(line: &str) {
    let cost = line.len() + LINE_COST;
    let _ = IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        Some(n.saturating_sub(cost))
    });
}

pub struct LineReader<R> {
    inner: Option<BufReader<R>>,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: Option<R>) -> LineReader<R> {
        LineReader {
            inner: reader.map(BufReader::new),
            buf: Vec::new(),
        }
    }

    /// The next line without its line ending (a last line without one included, a
    /// line longer than [`MAX_LINE`] in pieces), or `None` at the end (and ever after).
    pub async fn next(&mut self) -> Option<String> {
        let reader = self.inner.as_mut()?;
        loop {
            // What is taken from the reader is in `buf` at once: cancel-safe.
            let available = match reader.fill_buf().await {
                Ok([]) | Err(_) => {
                    self.inner = None;
                    if self.buf.is_empty() {
                        return None;
                    }
                    break;
                }
                Ok(bytes) => bytes,
            };
            let room = MAX_LINE - self.buf.len();
            let (take, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) if i < room => (i + 1, true),
                _ if available.len() >= room => (room, true),
                _ => (available.len(), false),
            };
            self.buf.extend_from_slice(&available[..take]);
            reader.consume(take);
            if done {
                break;
            }
        }
        let mut line = std::mem::take(&mut self.buf);
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Some(String::from_utf8_lossy(&line).into_owned())
    }
}

/// Say how many lines were dropped, if any were.
pub fn say_dropped(
    tx: &tokio::sync::mpsc::UnboundedSender<crate::core::event::Event>,
    throttle: &mut Throttle,
) {
    let dropped = throttle.take_dropped();
    if dropped > 0 {
        let _ = tx.send(crate::core::event::Event::Notice(format!(
            "{dropped} line{} of output dropped: they came faster than hotrun could show them",
            if dropped == 1 { "" } else { "s" }
        )));
    }
}

/// A process's last output lines, kept to say why it died: at most this many lines…
const LAST_LINES: usize = 40;
/// …and this many bytes.
const LAST_BYTES: usize = 8 * 1024;

/// The last lines a process printed, bounded in lines and bytes.
#[derive(Debug, Default)]
pub struct LastLines {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
}

impl LastLines {
    pub fn push(&mut self, line: &str) {
        // One very long line keeps its end, where the message usually is.
        let line = if line.len() > LAST_BYTES {
            let mut start = line.len() - LAST_BYTES;
            while !line.is_char_boundary(start) {
                start += 1;
            }
            &line[start..]
        } else {
            line
        };
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
        while self.lines.len() > LAST_LINES || self.bytes > LAST_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    pub fn take(&mut self) -> Vec<String> {
        self.bytes = 0;
        std::mem::take(&mut self.lines).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(flavor = "current_thread")]
    async fn partial_lines_survive_a_cancelled_read() {
        let (mut w, r) = tokio::io::duplex(64);
        let mut lines = LineReader::new(Some(r));
        w.write_all(b"hel").await.unwrap();
        // A read that is cancelled while the line is incomplete…
        tokio::select! {
            _ = lines.next() => panic!("no full line yet"),
            _ = tokio::task::yield_now() => {}
        }
        w.write_all(b"lo\nlast").await.unwrap();
        drop(w);
        // …loses nothing.
        assert_eq!(lines.next().await.as_deref(), Some("hello"));
        assert_eq!(lines.next().await.as_deref(), Some("last"));
        assert_eq!(lines.next().await, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn endless_lines_come_in_pieces() {
        let (mut w, r) = tokio::io::duplex(4096);
        let mut lines = LineReader::new(Some(r));
        tokio::spawn(async move {
            w.write_all(&vec![b'x'; MAX_LINE * 2 + 10]).await.unwrap();
            w.write_all(b"\nend\n").await.unwrap();
        });
        assert_eq!(lines.next().await.unwrap().len(), MAX_LINE);
        assert_eq!(lines.next().await.unwrap().len(), MAX_LINE);
        assert_eq!(lines.next().await.unwrap(), "x".repeat(10));
        assert_eq!(lines.next().await.as_deref(), Some("end"));
        assert_eq!(lines.next().await, None);
    }

    #[test]
    fn last_lines_are_bounded_in_lines_and_bytes() {
        let mut last = LastLines::default();
        for n in 0..100 {
            last.push(&format!("line {n}"));
        }
        let lines = last.take();
        assert_eq!(lines.len(), LAST_LINES);
        assert_eq!(lines.last().unwrap(), "line 99");
        let mut last = LastLines::default();
        last.push("first");
        last.push(&"é".repeat(LAST_BYTES));
        let lines = last.take();
        assert_eq!(lines.len(), 1, "the long line pushed the first one out");
        assert!(lines[0].len() <= LAST_BYTES && lines[0].chars().all(|c| c == 'é'));
        last.push("after");
        assert_eq!(last.take(), vec!["after".to_string()]);
    }
}
