//! A headless Chromium driven over the Chrome DevTools Protocol, so tests can watch
//! what hotrun's pages do in a real browser: evaluate JavaScript, wait for a value,
//! count page loads (a reload is a new load) and read the console. Std and serde_json
//! only; the protocol runs over `WsClient`. Every wait has a deadline, and a missed one
//! panics with what was awaited, so a stuck browser fails a test instead of hanging it.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{WsClient, TIMEOUT};
use crate::TempDir;

/// How long Chromium may take to start listening (it writes `DevToolsActivePort`).
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one protocol command may wait for its answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a navigation may take to reach its load event.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often `Page::wait_for` evaluates its expression.
const POLL: Duration = Duration::from_millis(25);

/// The executables tried, in order, on the `PATH`.
const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// A headless Chromium in its own process group, with a fresh profile. Dropping it
/// kills the whole group and removes the profile.
pub struct Chrome {
    child: Child,
    /// The DevTools HTTP and websocket port on 127.0.0.1.
    port: u16,
    /// The path of the browser-wide DevTools websocket (`/devtools/browser/…`).
    browser_path: String,
    /// Holds `profile/` (the user data dir) and `chrome.log` (Chromium's output).
    dir: TempDir,
}

impl Chrome {
    /// Start headless Chromium, or `None` (loudly) where it is not installed; with
    /// `CI=true` a missing Chromium is a failure.
    pub fn launch() -> Option<Chrome> {
        let Some(binary) = find_browser() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Chromium is missing: .ci/run must install chromium"
            );
            eprintln!(
                "SKIPPED: the browser tests need Chromium (Debian's chromium), which is not \
                 installed"
            );
            return None;
        };
        let dir = TempDir::new();
        let profile = dir.path().join("profile");
        let log_path = dir.path().join("chrome.log");
        let log = File::create(&log_path).unwrap();
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=Translate",
                "--window-size=1024,768",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own group, so that Drop can kill the browser with all its helpers.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // From here on a panic drops `chrome`, which kills the process group.
        let mut chrome = Chrome {
            child,
            port: 0,
            browser_path: String::new(),
            dir,
        };
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        loop {
            if let Some((port, path)) = read_active_port(&profile) {
                chrome.port = port;
                chrome.browser_path = path;
                return Some(chrome);
            }
            if let Some(status) = chrome.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before it listened; its output:\n{}",
                    binary.display(),
                    chrome.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} wrote no DevToolsActivePort within {LAUNCH_TIMEOUT:?}; its output:\n{}",
                    binary.display(),
                    chrome.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The DevTools port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The browser's DevTools websocket URL (`ws://127.0.0.1:PORT/devtools/browser/…`).
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, self.browser_path)
    }

    /// The browser process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The user data dir given to Chromium.
    pub fn profile(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// What Chromium printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chrome.log")).unwrap_or_default()
    }

    /// Open a new tab at `url` and wait for its load event. The tab starts blank and is
    /// then navigated, so no event of the first load can be missed; `Page::loads`
    /// counts from that load on (it is 1 on return).
    pub fn open(&self, url: &str) -> Page {
        let path = format!("/json/new?{}", percent_encode("about:blank"));
        // Chromium refuses `GET /json/new`: a new tab takes PUT.
        let (status, body) = devtools_http(self.port, "PUT", &path)
            .unwrap_or_else(|e| panic!("PUT {path} on the DevTools port failed: {e}"));
        assert_eq!(status, 200, "PUT {path} answered {status}: {body}");
        let target: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("PUT {path} answered bad JSON ({e}): {body}"));
        let (Some(id), Some(ws_url)) = (
            target["id"].as_str(),
            target["webSocketDebuggerUrl"].as_str(),
        ) else {
            panic!("PUT {path} answered no id or webSocketDebuggerUrl: {body}");
        };
        let ws_path = ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
            .unwrap_or_else(|| panic!("unexpected webSocketDebuggerUrl {ws_url:?}"));
        // No Origin header: Chromium answers 403 to an Origin that is neither its own
        // address (http://127.0.0.1:PORT) nor listed in --remote-allow-origins, and a
        // client that sends none is always let in.
        let ws = match WsClient::connect_with(
            &format!("127.0.0.1:{}", self.port),
            ws_path,
            &[("Origin", "")],
        ) {
            Ok(Ok(ws)) => ws,
            Ok(Err(status)) => panic!("the DevTools websocket {ws_url} answered {status}"),
            Err(e) => panic!("cannot connect to the DevTools websocket {ws_url}: {e}"),
        };
        let mut page = Page {
            ws,
            next_id: 1,
            port: self.port,
            target_id: id.to_string(),
            loads: 0,
            loaded: HashSet::new(),
            console: Vec::new(),
        };
        page.call("Page.enable", json!({}));
        page.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }));
        page.call("Runtime.enable", json!({}));
        page.call("Log.enable", json!({}));
        // The blank page's own events came before the answers above: forget them.
        page.loads = 0;
        page.loaded.clear();
        page.console.clear();
        page.goto(url);
        page
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group that `launch`
        // created for Chromium (process_group(0): its id is the browser's pid).
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // The helpers die with the browser, but not in the same instant: wait until none
        // is left alive, so that none still writes to the profile while it is removed.
        // (Their zombies, reparented to init, may linger for a second: they are dead.)
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether a process of the process group `group` is still alive (not a zombie).
fn group_alive(group: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().take(3).collect();
        matches!(fields[..], [state, _, pgrp]
            if pgrp.parse() == Ok(group) && !matches!(state, "Z" | "X"))
    })
}

/// One tab, driven over its own DevTools websocket. Dropping it closes the tab.
pub struct Page {
    ws: WsClient,
    next_id: u64,
    /// The browser's DevTools port (to close the tab).
    port: u16,
    target_id: String,
    /// Load events of the main frame since `Chrome::open`.
    loads: u32,
    /// The loader ids of every document whose load event has fired.
    loaded: HashSet<String>,
    /// Console messages, uncaught exceptions and browser log entries, formatted.
    console: Vec<String>,
}

impl Page {
    /// Evaluate a JavaScript expression (awaiting a promise) and return its value as
    /// JSON (`null` for `undefined`); a JavaScript exception panics with its text.
    pub fn eval(&mut self, expr: &str) -> Value {
        match self.evaluate(expr, Instant::now() + COMMAND_TIMEOUT) {
            Some(Ok(object)) => value_of(&object),
            Some(Err(e)) => panic!("evaluating `{expr}` failed: {e}"),
            None => panic!("evaluating `{expr}`: no answer within {COMMAND_TIMEOUT:?}"),
        }
    }

    /// Evaluate `expr` every ~25 ms until its value is truthy (JavaScript's sense) and
    /// return that value. An exception or a failed evaluation (the page is navigating)
    /// counts as not yet. After `timeout`, panic naming `what` with the last outcome.
    pub fn wait_for(&mut self, what: &str, expr: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        loop {
            match self.evaluate(expr, deadline) {
                Some(Ok(object)) if truthy(&object) => return value_of(&object),
                Some(Ok(object)) if object["type"] == "undefined" => {
                    last = "the value undefined".to_string();
                }
                Some(Ok(object)) => last = format!("the value {}", value_of(&object)),
                Some(Err(e)) => last = e,
                None => {}
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} (`{expr}`); last: {last}\n\
                     console:\n{}",
                    self.console.join("\n")
                );
            }
            self.pump(POLL.min(deadline - now));
        }
    }

    /// Navigate the tab to `url` and wait for the new document's load event.
    pub fn goto(&mut self, url: &str) {
        let answer = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = answer["errorText"].as_str().filter(|e| !e.is_empty()) {
            panic!("navigating to {url} failed: {error}");
        }
        // A navigation within the document (a new #fragment) loads nothing.
        let Some(loader) = answer["loaderId"].as_str() else {
            return;
        };
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while !self.loaded.contains(loader) {
            if !self.read_one(deadline) {
                panic!(
                    "{url} did not reach its load event within {LOAD_TIMEOUT:?}; console:\n{}",
                    self.console.join("\n")
                );
            }
        }
    }

    /// How many documents the tab's main frame loaded since `Chrome::open` (which
    /// leaves 1): a reload, a navigation or `goto` adds one when its load event fires.
    pub fn loads(&mut self) -> u32 {
        self.pump(Duration::ZERO);
        self.loads
    }

    /// Console messages (`[log] text`, `[error] text`, …), uncaught exceptions
    /// (`[exception] Uncaught Error: …`) and the browser's own log entries such as
    /// failed requests (`[error network] … (URL)`, but not the browser's own request
    /// for /favicon.ico), in order, since `Chrome::open`.
    pub fn console(&mut self) -> Vec<String> {
        self.pump(Duration::ZERO);
        self.console.clone()
    }

    /// Send a DevTools command and return its result; an error answer panics.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params, Instant::now() + COMMAND_TIMEOUT) {
            Some(Ok(result)) => result,
            Some(Err(e)) => panic!("DevTools command {method} failed: {e}"),
            None => panic!("DevTools command {method}: no answer within {COMMAND_TIMEOUT:?}"),
        }
    }

    /// `Runtime.evaluate`: the result's remote object, or the exception or error text;
    /// `None` when no answer came by `until`.
    fn evaluate(&mut self, expr: &str, until: Instant) -> Option<Result<Value, String>> {
        let params = json!({
            "expression": expr,
            "returnByValue": true,
            "awaitPromise": true,
        });
        Some(match self.try_call("Runtime.evaluate", params, until)? {
            Ok(result) => match result.get("exceptionDetails") {
                Some(details) => Err(exception_text(details)),
                None => Ok(result["result"].clone()),
            },
            Err(e) => Err(e),
        })
    }

    /// Send a command and read (handling events on the way) until its answer: the
    /// result, or the error's text; `None` when no answer came by `until`.
    fn try_call(
        &mut self,
        method: &str,
        params: Value,
        until: Instant,
    ) -> Option<Result<Value, String>> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "id": id, "method": method, "params": params });
        if let Err(e) = self.ws.send_text(&message.to_string()) {
            panic!("sending {method} to the DevTools websocket failed: {e}");
        }
        loop {
            let answer = self.read_message(until)?;
            if answer["id"].as_u64() != Some(id) {
                // An event (already handled), or the late answer of a command that
                // `wait_for` stopped waiting for.
                continue;
            }
            return Some(match answer.get("error") {
                Some(error) => Err(match error["data"].as_str() {
                    Some(data) => format!("{} ({data})", error["message"]),
                    None => error["message"].to_string(),
                }),
                None => Ok(answer["result"].clone()),
            });
        }
    }

    /// Read and handle messages for `wait` (at least whatever has already arrived).
    fn pump(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while self.read_one(until) {}
    }

    /// Read one message, handling it if it is an event; false when none came by
    /// `until`.
    fn read_one(&mut self, until: Instant) -> bool {
        self.read_message(until).is_some()
    }

    /// Read one message, handling it if it is an event, and return it; `None` when none
    /// came by `until`. A broken connection or a crashed page panics.
    fn read_message(&mut self, until: Instant) -> Option<Value> {
        let wait = until.saturating_duration_since(Instant::now());
        let text = match self.ws.recv_text_timeout(wait) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => panic!(
                "the DevTools websocket failed: {e}; console:\n{}",
                self.console.join("\n")
            ),
        };
        let message: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("DevTools sent bad JSON ({e}): {text}"));
        if let Some(method) = message["method"].as_str() {
            self.handle_event(method, &message["params"]);
        }
        Some(message)
    }

    fn handle_event(&mut self, method: &str, params: &Value) {
        match method {
            "Page.loadEventFired" => self.loads += 1,
            "Page.lifecycleEvent" if params["name"] == "load" => {
                if let Some(loader) = params["loaderId"].as_str() {
                    self.loaded.insert(loader.to_string());
                }
            }
            "Runtime.consoleAPICalled" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(describe).collect())
                    .unwrap_or_default();
                let kind = params["type"].as_str().unwrap_or("console");
                self.console.push(format!("[{kind}] {}", args.join(" ")));
            }
            "Runtime.exceptionThrown" => {
                let text = exception_text(&params["exceptionDetails"]);
                self.console.push(format!("[exception] {text}"));
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                // The browser asks for /favicon.ico by itself; the page did not.
                if entry["url"]
                    .as_str()
                    .is_some_and(|url| url.ends_with("/favicon.ico"))
                {
                    return;
                }
                let mut line = format!(
                    "[{} {}] {}",
                    entry["level"].as_str().unwrap_or("log"),
                    entry["source"].as_str().unwrap_or("other"),
                    entry["text"].as_str().unwrap_or("")
                );
                if let Some(url) = entry["url"].as_str() {
                    line.push_str(&format!(" ({url})"));
                }
                self.console.push(line);
            }
            "Inspector.targetCrashed" => {
                panic!("the page crashed; console:\n{}", self.console.join("\n"))
            }
            _ => {}
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // Close the tab, so that its scripts (a reload client, say) stop with the test.
        let _ = devtools_http(self.port, "PUT", &format!("/json/close/{}", self.target_id));
    }
}

/// The value of a remote object (`Runtime.evaluate` with `returnByValue`) as JSON:
/// `null` for `undefined`, and a string for what JSON cannot hold (`NaN`, `1n`).
fn value_of(object: &Value) -> Value {
    if let Some(value) = object.get("value") {
        return value.clone();
    }
    match object["unserializableValue"].as_str() {
        Some(text) => Value::String(text.to_string()),
        None => Value::Null,
    }
}

/// Whether a remote object's value is truthy in JavaScript.
fn truthy(object: &Value) -> bool {
    if let Some(text) = object["unserializableValue"].as_str() {
        // Infinity, -Infinity and non-zero BigInts; not -0, NaN or 0n.
        return !matches!(text, "-0" | "NaN" | "0n");
    }
    match object.get("value") {
        None | Some(Value::Null) => {
            // undefined and null; functions and symbols are not returned by value but
            // are truthy.
            matches!(object["type"].as_str(), Some("function" | "symbol"))
        }
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// A console argument as the console would print it.
fn describe(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(value) => value.to_string(),
        None => object["unserializableValue"]
            .as_str()
            .or(object["description"].as_str())
            .or(object["type"].as_str())
            .unwrap_or("?")
            .to_string(),
    }
}

/// The text of `exceptionDetails`: "Uncaught Error: boom\n    at …".
fn exception_text(details: &Value) -> String {
    let text = details["text"].as_str().unwrap_or("exception");
    match details["exception"]["description"].as_str() {
        Some(description) => format!("{text} {description}"),
        None => match details["exception"].get("value") {
            Some(value) => format!("{text} {value}"),
            None => text.to_string(),
        },
    }
}

/// The first of `BROWSERS` on the `PATH`.
fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The port and browser websocket path from `DevToolsActivePort`, once it is complete.
fn read_active_port(profile: &Path) -> Option<(u16, String)> {
    let text = std::fs::read_to_string(profile.join("DevToolsActivePort")).ok()?;
    let mut lines = text.lines();
    let port = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    // Read while being written, the path may be cut short: wait for the whole id.
    let id = path.strip_prefix("/devtools/browser/")?;
    (port != 0 && id.len() >= 36).then(|| (port, path.to_string()))
}

/// One HTTP request without a body to the DevTools port: the status and the body.
fn devtools_http(port: u16, method: &str, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\n\
         Connection: close\r\n\
         \r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad status {line:?}"))
        })?;
    let mut length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("Content-Length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
