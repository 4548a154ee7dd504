//! Line-by-line reading of a child's output that never fails on bad UTF-8 and passes
//! each line on as soon as its newline arrives.

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

    /// The next line without its line ending, or `None` at the end (and ever after).
    pub async fn next(&mut self) -> Option<String> {
        let reader = self.inner.as_mut()?;
        self.buf.clear();
        match reader.read_until(b'\n', &mut self.buf).await {
            Ok(0) | Err(_) => {
                self.inner = None;
                None
            }
            Ok(_) => {
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                Some(String::from_utf8_lossy(&self.buf).into_owned())
            }
        }
    }
}
