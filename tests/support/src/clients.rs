//! Small blocking clients for the streaming protocols hotrun has to carry: a websocket
//! client and a Server-Sent Events client. Std only; every read gives up after
//! `TIMEOUT`, so a stuck stream fails a test instead of hanging it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single connect, read or write may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The GUID RFC 6455 appends to the client's key to compute the accept value.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest server frame, and largest reassembled message, the client accepts.
const WS_MAX_PAYLOAD: u64 = 64 << 20;

fn error(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// A TCP connection to 127.0.0.1:port with read and write timeouts set.
fn connect_local(port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A TCP connection to `addr` ("127.0.0.1:PORT", or any host:port) with read and write
/// timeouts set.
fn connect_addr(addr: &str) -> io::Result<TcpStream> {
    let mut last = None;
    for resolved in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&resolved, TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| error(format!("{addr:?} resolves to no address"))))
}

/// A response head: the status code and the headers.
struct Head {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// The value of a header, matched case-insensitively.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether a comma-separated header lists `token` (case-insensitively).
    fn header_has(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }
}

/// Read one CRLF- (or LF-) terminated line, without its terminator; EOF is an error.
pub fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of a line",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| error("response line is not UTF-8"))
}

/// Read a response head up to and including the empty line.
fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status = parts.next().and_then(|code| code.parse::<u16>().ok());
    let status = match status {
        Some(status) if version.starts_with("HTTP/") => status,
        _ => return Err(error(format!("bad status line {status_line:?}"))),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Head {
        status,
        status_line,
        headers,
    })
}

/// Random-ish bytes: std's randomly keyed hasher fed a counter and the clock. Good
/// enough for websocket keys and masks, which only need to be unpredictable-ish.
fn random_bytes<const N: usize>() -> [u8; N] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = RandomState::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u64(nanos);
        hasher.write_usize(i);
        let value = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&value[..chunk.len()]);
    }
    out
}

/// A websocket client connection.
pub struct WsClient {
    reader: BufReader<TcpStream>,
    /// A text message whose first frames have arrived but not its final one.
    partial: Option<Vec<u8>>,
}

impl WsClient {
    /// Open a websocket to 127.0.0.1:port at `path`, checking the server's 101 answer
    /// and its `Sec-WebSocket-Accept`.
    pub fn connect(port: u16, path: &str) -> io::Result<WsClient> {
        match WsClient::connect_with(&format!("127.0.0.1:{port}"), path, &[])? {
            Ok(client) => Ok(client),
            Err(status) => Err(error(format!(
                "websocket upgrade of {path} answered {status}"
            ))),
        }
    }

    /// Open a websocket to `addr` ("127.0.0.1:PORT") at `path`. The request carries
    /// `Host: ADDR`, `Origin: http://ADDR` and the usual upgrade headers; each of
    /// `headers` replaces the default of the same name (case-insensitively), or is
    /// added, and an empty value removes the header (`("Origin", "")` sends none). A
    /// 101 answer is checked (`Sec-WebSocket-Accept`, `Upgrade`) and gives the client;
    /// any other status gives `Ok(Err(status))`, so a test can expect a refusal.
    pub fn connect_with(
        addr: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Result<WsClient, u16>> {
        let mut stream = connect_addr(addr)?;
        let key = base64(&random_bytes::<16>());
        let mut request_headers: Vec<(String, String)> = vec![
            ("Host".into(), addr.into()),
            ("Upgrade".into(), "websocket".into()),
            ("Connection".into(), "Upgrade".into()),
            ("Sec-WebSocket-Key".into(), key),
            ("Sec-WebSocket-Version".into(), "13".into()),
            ("Origin".into(), format!("http://{addr}")),
        ];
        for &(name, value) in headers {
            match request_headers
                .iter_mut()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
            {
                Some(header) => *header = (name.into(), value.into()),
                None => request_headers.push((name.into(), value.into())),
            }
        }
        request_headers.retain(|(_, value)| !value.is_empty());
        let mut request = format!("GET {path} HTTP/1.1\r\n");
        for (name, value) in &request_headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.flush()?;

        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?;
        if head.status != 101 {
            return Ok(Err(head.status));
        }
        let sent_key = request_headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Sec-WebSocket-Key"))
            .map_or("", |(_, value)| value.as_str());
        let expected = ws_accept(sent_key);
        match head.header("Sec-WebSocket-Accept") {
            Some(accept) if accept == expected => {}
            other => {
                return Err(error(format!(
                    "Sec-WebSocket-Accept is {other:?}, expected {expected:?}"
                )))
            }
        }
        if !head.header_has("Upgrade", "websocket") {
            return Err(error(format!(
                "101 answer without `Upgrade: websocket` (Upgrade: {:?})",
                head.header("Upgrade")
            )));
        }
        Ok(Ok(WsClient {
            reader,
            partial: None,
        }))
    }

    /// Replace the read timeout (`TIMEOUT` from the start); `None` waits forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// Send one text message as a single masked frame.
    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_frame(0x1, text.as_bytes())
    }

    /// Send a ping; its pong is consumed by `recv_text`.
    pub fn send_ping(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send_frame(0x9, payload)
    }

    /// Send a close frame (status 1000) and wait for the server's close frame.
    pub fn close(mut self) -> io::Result<()> {
        self.send_frame(0x8, &1000u16.to_be_bytes())?;
        loop {
            let (_, opcode, _) = self.read_frame()?;
            if opcode == 0x8 {
                return Ok(());
            }
        }
    }

    /// Receive one text message. Pings are answered and pongs skipped on the way; a
    /// close frame, EOF, a binary message or a protocol error is an error.
    pub fn recv_text(&mut self) -> io::Result<String> {
        self.recv_message(None)
            .map(|message| message.expect("a message without a wait limit"))
    }

    /// Receive one text message if one starts within `timeout`; `Ok(None)` when none
    /// does. Only the wait for a message to start is limited by `timeout`: once its
    /// first byte is in, the rest is read under the usual read timeout, so a message is
    /// never cut in half.
    pub fn recv_text_timeout(&mut self, timeout: Duration) -> io::Result<Option<String>> {
        self.recv_message(Some(Instant::now() + timeout))
    }

    /// Receive one text message, giving up with `None` when `until` passes before the
    /// next one (or a control frame) starts.
    fn recv_message(&mut self, until: Option<Instant>) -> io::Result<Option<String>> {
        loop {
            if let Some(until) = until {
                if self.partial.is_none() && !self.wait_readable(until)? {
                    return Ok(None);
                }
            }
            let (fin, opcode, payload) = self.read_frame()?;
            let message = match opcode {
                0x1 => {
                    if self.partial.is_some() {
                        return Err(error("new text frame inside a fragmented message"));
                    }
                    payload
                }
                0x0 => {
                    let Some(mut message) = self.partial.take() else {
                        return Err(error("continuation frame without a message"));
                    };
                    if (message.len() + payload.len()) as u64 > WS_MAX_PAYLOAD {
                        return Err(error(format!(
                            "fragmented message of more than {WS_MAX_PAYLOAD} bytes"
                        )));
                    }
                    message.extend_from_slice(&payload);
                    message
                }
                0x2 => return Err(error("expected a text message, got a binary one")),
                0x8 => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("websocket closed by the server (code {code:?})"),
                    ));
                }
                0x9 => {
                    self.send_frame(0xA, &payload)?;
                    continue;
                }
                0xA => continue,
                other => return Err(error(format!("unknown websocket opcode {other:#x}"))),
            };
            if fin {
                return String::from_utf8(message)
                    .map(Some)
                    .map_err(|_| error("websocket text message is not UTF-8"));
            }
            self.partial = Some(message);
        }
    }

    /// Wait until a byte can be read (or EOF is reached: the next read reports it), or
    /// `until` passes: false then. Nothing is consumed, so the stream stays in step.
    fn wait_readable(&mut self, until: Instant) -> io::Result<bool> {
        if !self.reader.buffer().is_empty() {
            return Ok(true);
        }
        let stream = self.reader.get_ref();
        let previous = stream.read_timeout()?;
        let left = until.saturating_duration_since(Instant::now());
        // A zero timeout is refused by the socket: wait at least a millisecond.
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let filled = self.reader.fill_buf().map(|_| ());
        self.reader.get_ref().set_read_timeout(previous)?;
        match filled {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Write one final frame, masked as a client must.
    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mask = random_bytes::<4>();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let stream = self.reader.get_mut();
        stream.write_all(&frame)?;
        stream.flush()
    }

    /// Read one server frame: (fin, opcode, payload). Server frames must be unmasked.
    fn read_frame(&mut self) -> io::Result<(bool, u8, Vec<u8>)> {
        let reader = &mut self.reader;
        let mut head = [0u8; 2];
        reader.read_exact(&mut head)?;
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0F;
        if head[0] & 0x70 != 0 {
            return Err(error("server frame has reserved bits set"));
        }
        if head[1] & 0x80 != 0 {
            return Err(error("server frame is masked"));
        }
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0u8; 2];
                reader.read_exact(&mut ext)?;
                u64::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                reader.read_exact(&mut ext)?;
                u64::from_be_bytes(ext)
            }
            len => u64::from(len),
        };
        if len > WS_MAX_PAYLOAD {
            return Err(error(format!("server frame of {len} bytes is too large")));
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload)?;
        Ok((fin, opcode, payload))
    }
}

/// GET an event stream and return the payload of its first `data:` line, trimmed.
pub fn sse_first_data(port: u16, path: &str) -> io::Result<String> {
    SseClient::connect(port, path)?.next_data()
}

/// How the body of an event-stream response is framed.
enum Body {
    /// Chunked transfer encoding; the number of bytes left in the current chunk
    /// (0 when the next thing to read is a chunk-size line).
    Chunked { left: u64 },
    /// A Content-Length body: the number of bytes left.
    Length { left: u64 },
    /// Everything until the connection closes.
    UntilClose,
}

/// A Server-Sent Events client reading successive `data:` lines.
pub struct SseClient {
    reader: BufReader<TcpStream>,
    body: Body,
    /// Decoded body bytes not yet split into lines.
    pending: Vec<u8>,
    /// The body has ended (last chunk, length reached or EOF).
    done: bool,
}

impl SseClient {
    /// GET `path` on 127.0.0.1:port, checking for a 200 `text/event-stream` answer.
    pub fn connect(port: u16, path: &str) -> io::Result<SseClient> {
        let mut stream = connect_local(port)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\n\
             Host: 127.0.0.1:{port}\r\n\
             Accept: text/event-stream\r\n\
             Cache-Control: no-cache\r\n\
             \r\n"
        );
        stream.write_all(request.as_bytes())?;
        stream.flush()?;

        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?;
        if head.status != 200 {
            return Err(error(format!(
                "event stream {path} answered {:?}",
                head.status_line
            )));
        }
        let content_type = head.header("Content-Type").unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(error(format!(
                "event stream {path} has Content-Type {content_type:?}"
            )));
        }
        let body = if head.header_has("Transfer-Encoding", "chunked") {
            Body::Chunked { left: 0 }
        } else if let Some(length) = head.header("Content-Length") {
            let left = length
                .parse()
                .map_err(|_| error(format!("bad Content-Length {length:?}")))?;
            Body::Length { left }
        } else {
            Body::UntilClose
        };
        Ok(SseClient {
            reader,
            body,
            pending: Vec::new(),
            done: false,
        })
    }

    /// The payload of the next `data:` line, trimmed. Other lines (events, ids,
    /// comments, blank separators) are skipped; the end of the stream is an error.
    pub fn next_data(&mut self) -> io::Result<String> {
        loop {
            let line = self.next_line()?;
            let value = if line == "data" {
                Some("")
            } else {
                line.strip_prefix("data:")
            };
            if let Some(value) = value {
                return Ok(value.trim().to_string());
            }
        }
    }

    /// The next line of the decoded body, without its terminator.
    fn next_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8(line).map_err(|_| error("event stream is not UTF-8"));
            }
            if self.done || !self.fill()? {
                self.done = true;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "event stream ended",
                ));
            }
        }
    }

    /// Append more decoded body bytes to `pending`; false when the body has ended.
    fn fill(&mut self) -> io::Result<bool> {
        match &mut self.body {
            Body::Chunked { left } => {
                if *left == 0 {
                    let line = read_line(&mut self.reader)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| error(format!("bad chunk size line {line:?}")))?;
                    if size == 0 {
                        // The last chunk: skip any trailers up to the empty line.
                        while !read_line(&mut self.reader)?.is_empty() {}
                        return Ok(false);
                    }
                    *left = size;
                }
                let n = read_some(&mut self.reader, &mut self.pending, *left)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a chunk",
                    ));
                }
                *left -= n;
                if *left == 0 {
                    let end = read_line(&mut self.reader)?;
                    if !end.is_empty() {
                        return Err(error(format!("chunk not followed by CRLF: {end:?}")));
                    }
                }
                Ok(true)
            }
            Body::Length { left } => {
                if *left == 0 {
                    return Ok(false);
                }
                let n = read_some(&mut self.reader, &mut self.pending, *left)?;
                *left -= n;
                Ok(n > 0)
            }
            Body::UntilClose => Ok(read_some(&mut self.reader, &mut self.pending, u64::MAX)? > 0),
        }
    }
}

/// Move up to `max` bytes that are available (waiting for at least one) from `reader`
/// to `out`; 0 at EOF.
fn read_some(reader: &mut BufReader<TcpStream>, out: &mut Vec<u8>, max: u64) -> io::Result<u64> {
    let available = reader.fill_buf()?;
    let n = available
        .len()
        .min(usize::try_from(max).unwrap_or(usize::MAX));
    out.extend_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n as u64)
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
pub fn ws_accept(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(WS_GUID.as_bytes());
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4), enough for the websocket handshake.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());

    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(value);
        }
    }

    let mut digest = [0u8; 20];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(char::from(ALPHABET[(n >> 18) as usize & 63]));
        out.push(char::from(ALPHABET[(n >> 12) as usize & 63]));
        out.push(if chunk.len() > 1 {
            char::from(ALPHABET[(n >> 6) as usize & 63])
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            char::from(ALPHABET[n as usize & 63])
        } else {
            '='
        });
    }
    out
}
