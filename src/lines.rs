//! Line-by-line reading of a child's output that never fails on bad UTF-8 and passes
//! each line on as soon as its newline arrives.
//!
//! `next` is cancel-safe, so it can race other readers in `tokio::select!`: bytes of a
//! line read before a cancellation stay in the buffer and the next call goes on from
//! there (tokio's `read_until` appends what it read even when dropped midway).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

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

    /// The next line without its line ending (a last line without one included), or
    /// `None` at the end (and ever after).
    pub async fn next(&mut self) -> Option<String> {
        let reader = self.inner.as_mut()?;
        let ended = match reader.read_until(b'\n', &mut self.buf).await {
            Ok(0) | Err(_) => true,
            Ok(_) => false,
        };
        if ended {
            self.inner = None;
            if self.buf.is_empty() {
                return None;
            }
        }
        let mut line = std::mem::take(&mut self.buf);
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Some(String::from_utf8_lossy(&line).into_owned())
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
}
