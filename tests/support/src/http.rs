//! Plain HTTP against 127.0.0.1: one GET, waits for a body, a request with headers and
//! its answer, and a client that hammers an app across swaps.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{Hotrun, DEADLINE};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How long a GET may take to connect and to answer.
#[derive(Debug, Clone, Copy)]
struct Limits {
    connect: Duration,
    answer: Duration,
}

/// A test's probe: something that does not answer soon is not serving.
const QUICK: Limits = Limits {
    connect: Duration::from_secs(2),
    answer: Duration::from_secs(5),
};

/// The benchmark's: a slow answer is timed, not failed.
const PATIENT: Limits = Limits {
    connect: Duration::from_secs(30),
    answer: Duration::from_secs(60),
};

/// GET / on 127.0.0.1:port, on a new connection: the trimmed body of a 200 answer, or
/// what went wrong.
fn get_root(port: u16, limits: Limits) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limits.connect)
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(limits.answer))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(|e| e.to_string())?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.trim().to_string()),
        Some((head, _)) => Err(head.lines().next().unwrap_or("").to_string()),
        None => Err(format!("no answer ({} bytes)", response.len())),
    }
}

/// One plain HTTP GET; the body, or None when nothing answered (within 2 s to connect
/// and 5 s to answer) or the answer was not a 200.
pub fn http_get(port: u16) -> Option<String> {
    get_root(port, QUICK).ok()
}

/// One plain HTTP GET that waits long (30 s to connect, 60 s to answer): the body of a
/// 200 answer, or what went wrong.
pub fn http_get_patiently(port: u16) -> Result<String, String> {
    get_root(port, PATIENT)
}

/// Wait until the app on `port` answers with `body`.
pub fn wait_http(port: u16, body: &str, hotrun: &Hotrun) {
    let start = Instant::now();
    loop {
        if http_get(port).as_deref() == Some(body) {
            return;
        }
        if start.elapsed() > DEADLINE {
            hotrun.fail(&format!(
                "port {port} never answered {body:?} (last answer: {:?})",
                http_get(port)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (up to 5 minutes, asking patiently) until whatever serves `port` (`what`, for
/// the message: hotrun or a peer tool) answers with `body`.
pub fn wait_serving(port: u16, body: &str, what: &str) {
    let start = Instant::now();
    while http_get_patiently(port).as_deref() != Ok(body) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{what}: port {port} never served {body:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request with extra headers; the status, the head and the (de-chunked)
/// body.
pub fn request(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    request_as("GET", port, path, headers)
}

/// As [`request`], with another method (`HEAD`: the body is what came after the head,
/// which should be nothing).
pub fn request_as(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    s.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = head[9..12].parse().unwrap();
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// The value of a header in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 4 + size..];
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One request of a `Hammer`: when it started and ended, and what it got.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it started, unix ms (comparable with the `ts_ms` of hotrun's events).
    pub start_ms: u64,
    /// When it ended, unix ms.
    pub end_ms: u64,
    /// When it started, to time it.
    pub start: Instant,
    /// When it ended, to time it.
    pub end: Instant,
    /// The body of a 200 answer, or what went wrong.
    pub result: Result<String, String>,
}

impl Sample {
    /// How long the request took, in ms.
    pub fn took_ms(&self) -> f64 {
        (self.end - self.start).as_secs_f64() * 1000.0
    }
}

/// A client sending GET / back to back, each on a new connection, until stopped.
pub struct Hammer {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hammer {
    /// The tests' client: `http_get`'s short limits, 2 ms between two requests.
    pub fn start(port: u16) -> Hammer {
        Hammer::spawn(port, QUICK, true)
    }

    /// The benchmark's: as fast as it can (a pause only after a failure, so that a
    /// refused connection does not spin), with patient limits, so that a slow answer
    /// is timed rather than failed.
    pub fn flat_out(port: u16) -> Hammer {
        Hammer::spawn(port, PATIENT, false)
    }

    fn spawn(port: u16, limits: Limits, always_pause: bool) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<Sample>>> = Default::default();
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let (start_ms, start) = (now_ms(), Instant::now());
                let result = get_root(port, limits);
                let (end_ms, end) = (now_ms(), Instant::now());
                let failed = result.is_err();
                out.lock().unwrap().push(Sample {
                    start_ms,
                    end_ms,
                    start,
                    end,
                    result,
                });
                if always_pause || failed {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        Hammer {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// When the first answer with `body` arrived (waiting up to 5 minutes for it).
    pub fn wait_for(&self, body: &str) -> Instant {
        let start = Instant::now();
        loop {
            if let Some(s) = self
                .samples
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.result.as_deref() == Ok(body))
            {
                return s.end;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "never served {body:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stop; every request it made.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.samples.lock().unwrap().clone()
    }
}

/// The `ts_ms` of one of hotrun's events.
pub fn ts(event: &Value) -> u64 {
    event["ts_ms"].as_u64().unwrap()
}

/// That a hammer's requests across swaps all got an answer, and none waited for a
/// whole build (`builds`: the `ts_ms` of each build's start and finish).
pub fn assert_no_failures_and_no_wait_for_a_build(samples: &[Sample], builds: &[(u64, u64)]) {
    assert!(
        samples.len() > 50,
        "the client made only {} requests",
        samples.len()
    );
    let failed: Vec<_> = samples.iter().filter(|s| s.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        samples.len(),
        &failed[..failed.len().min(5)]
    );
    for (started, finished) in builds {
        let waited: Vec<_> = samples
            .iter()
            .filter(|s| s.start_ms < *started && s.end_ms > *finished)
            .collect();
        assert!(
            waited.is_empty(),
            "requests waited for a whole build ({started}..{finished}): {waited:?}"
        );
    }
}
