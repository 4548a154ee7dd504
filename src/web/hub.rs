//! Browser live reload: a hub the loop feeds with [`Browser`] messages, the
//! websocket `/__hotrun/ws` every open tab listens on, and the script
//! `/__hotrun/client.js` that acts on them. Served on the proxy's origin when the proxy
//! runs, otherwise on `reload.listen`.
//!
//! Messages go one way, server to client, as JSON with a `type`. A tab that connects
//! gets `hello` with the current state at once, so a tab opened while a build is failing
//! shows the errors on load. Every message carries the `build_id` of the app that
//! serves now (start time + counter): a tab that reconnects to a restarted hotrun sees
//! an unknown id and reloads.
//!
//! The upgrade is checked: the `Host` must be a loopback name (or listed in
//! `reload.hosts`) against DNS rebinding, and the `Origin` the proxy's own origin (proxy
//! mode) or a loopback origin (else), or one listed in `reload.origins`; anything else
//! gets 403. No CORS headers, and nothing here reads a file or runs a command.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::core::event::{Browser, Diagnostic, ExitStatus};
use crate::web::guard::Guard;
use crate::web::http::{empty, full, header_str, serve_http, text, Body};

/// The client script, embedded at build time.
pub const CLIENT_JS: &str = include_str!("../../assets/client.js");
/// Every path hotrun answers itself starts with this.
pub const PREFIX: &str = "/__hotrun/";
pub const SCRIPT_PATH: &str = "/__hotrun/client.js";
pub const SOCKET_PATH: &str = "/__hotrun/ws";
/// Server pings keep idle connections open through proxies and detect dead tabs.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A failed build can list hundreds of errors; the overlay shows the first ones.
const MAX_DIAGNOSTICS: usize = 100;

/// What the app is doing.
#[derive(Debug, Clone, PartialEq)]
enum Current {
    Building,
    Running,
    Exited(ExitStatus, Vec<String>),
}

struct Inner {
    /// The app version that serves now.
    live: u64,
    current: Current,
    /// The last build failed with these; until a build succeeds, a tab that connects
    /// shows them (also after a restart of the old app).
    failure: Option<(Vec<Diagnostic>, Option<String>)>,
    /// A build started and has not failed (yet): the next `compiled` is its app.
    building: bool,
    clients: Vec<mpsc::Sender<Arc<str>>>,
}

/// Messages waiting for one tab. A tab this far behind is dropped: it reconnects and
/// its `hello` brings it the current state.
const CLIENT_QUEUE: usize = 8;
/// At most this many tabs at once; more get 503 (and retry).
pub const MAX_TABS: usize = 64;
/// A message a tab has not taken within this long ends its connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// An overlay shows at most this much of a diagnostic's rendered text…
const RENDERED_MAX: usize = 64 * 1024;
/// …and of all of them.
const DIAGNOSTICS_BYTES: usize = 256 * 1024;

/// The open tabs, and what they are told.
pub struct Hub {
    /// When this hotrun started (unix ms): build ids are unique across runs.
    run: u128,
    /// Paths in messages are relative to the project root.
    root: PathBuf,
    inner: Mutex<Inner>,
}

impl Hub {
    pub fn new(root: &Path) -> Hub {
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Hub {
            run,
            root: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
            inner: Mutex::new(Inner {
                live: 0,
                current: Current::Building,
                failure: None,
                building: false,
                clients: Vec::new(),
            }),
        }
    }

    fn build_id(&self, n: u64) -> String {
        format!("{}-{n}", self.run)
    }

    /// The id of the app that serves now (pages carry it in their script tag).
    pub fn live_id(&self) -> String {
        self.build_id(self.lock().live)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new tab: its `hello`, and the messages that follow. Taken under one lock, so
    /// no message falls between the two.
    /// `None` when [`MAX_TABS`] are open.
    pub fn join(&self) -> Option<(String, mpsc::Receiver<Arc<str>>)> {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let mut inner = self.lock();
        inner.clients.retain(|c| !c.is_closed());
        if inner.clients.len() >= MAX_TABS {
            return None;
        }
        let mut hello = json!({ "type": "hello", "build_id": self.build_id(inner.live) });
        match (&inner.current, &inner.failure) {
            (Current::Building, _) => hello["state"] = json!("building"),
            (_, Some((diagnostics, title))) => {
                hello["state"] = json!("failed");
                hello["diagnostics"] = diagnostics_json(diagnostics);
                if let Some(title) = title {
                    hello["title"] = json!(title);
                }
            }
            (Current::Running, None) => hello["state"] = json!("running"),
            (Current::Exited(status, output), None) => {
                hello["state"] = json!("exited");
                hello["code"] = json!(status.code);
                hello["signal"] = json!(status.signal);
                hello["output"] = json!(output);
            }
        }
        inner.clients.push(tx);
        Some((hello.to_string(), rx))
    }

    /// Tell every open tab; returns how many there were.
    pub fn send(&self, message: &Browser) -> usize {
        let mut inner = self.lock();
        match message {
            Browser::Building { .. } => {
                inner.current = Current::Building;
                inner.building = true;
            }
            Browser::Compiled => {
                inner.live += 1;
                inner.current = Current::Running;
                if std::mem::take(&mut inner.building) {
                    inner.failure = None;
                }
            }
            Browser::Ok => {
                inner.current = Current::Running;
                inner.building = false;
                inner.failure = None;
            }
            // A command failed: what the build and the app do is as it was.
            Browser::Error {
                diagnostics,
                title,
                build_ended: false,
            } => inner.failure = Some((diagnostics.clone(), title.clone())),
            Browser::Error {
                diagnostics, title, ..
            } => {
                // The old app (if any) still serves.
                if inner.current == Current::Building {
                    inner.current = Current::Running;
                }
                inner.building = false;
                inner.failure = Some((diagnostics.clone(), title.clone()));
            }
            Browser::Fixed => inner.failure = None,
            // A new generation that died on start: the old one still serves, and the
            // page keeps its build.
            Browser::Exited {
                rolled_back: true, ..
            } => {
                if inner.current == Current::Building {
                    inner.current = Current::Running;
                }
                inner.building = false;
            }
            Browser::Exited { status, output, .. } => {
                inner.current = Current::Exited(*status, output.clone())
            }
            Browser::Reload { .. } | Browser::Css { .. } => {}
        }
        let mut wire = json!({ "type": message.kind(), "build_id": self.build_id(inner.live) });
        match message {
            Browser::Building { files } => {
                wire["files"] = files.iter().map(|f| self.relative(f)).collect()
            }
            Browser::Error {
                diagnostics, title, ..
            } => {
                wire["diagnostics"] = diagnostics_json(diagnostics);
                if let Some(title) = title {
                    wire["title"] = json!(title);
                }
            }
            Browser::Exited {
                status,
                output,
                rolled_back,
            } => {
                wire["rolled_back"] = json!(rolled_back);
                wire["code"] = json!(status.code);
                wire["signal"] = json!(status.signal);
                wire["output"] = json!(output);
            }
            Browser::Reload { path } | Browser::Css { path } => {
                wire["path"] = json!(self.relative(path))
            }
            Browser::Compiled | Browser::Ok | Browser::Fixed => {}
        }
        let wire: Arc<str> = wire.to_string().into();
        // A tab that is behind (its queue full) or gone is let go.
        inner.clients.retain(|c| c.try_send(wire.clone()).is_ok());
        inner.clients.len()
    }

    /// `path` relative to the project root, with `/` separators.
    fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The diagnostics an overlay shows: errors first (warnings only when there are no
/// errors), at most [`MAX_DIAGNOSTICS`], their rendered text cut to size.
fn diagnostics_json(diagnostics: &[Diagnostic]) -> Value {
    let mut budget = DIAGNOSTICS_BYTES;
    let mut shown = Vec::new();
    for d in diagnostics
        .iter()
        .filter(|d| d.level != "warning" || diagnostics.iter().all(|d| d.level == "warning"))
        .take(MAX_DIAGNOSTICS)
    {
        let mut d = d.clone();
        let keep = RENDERED_MAX.min(budget);
        if d.rendered.len() > keep {
            let mut end = keep;
            while !d.rendered.is_char_boundary(end) {
                end -= 1;
            }
            d.rendered.truncate(end);
            d.rendered.push_str("\n… (cut)");
        }
        budget = budget.saturating_sub(d.rendered.len() + d.message.len());
        shown.push(d);
        if budget == 0 {
            break;
        }
    }
    json!(shown)
}

/// Answer a request under [`PREFIX`]: the script, the websocket, or 404.
pub fn respond<B>(mut req: Request<B>, hub: &Arc<Hub>, guard: &Guard) -> Response<Body> {
    let host = header_str(&req, header::HOST)
        .unwrap_or_default()
        .to_string();
    if !guard.host_allowed(&host) {
        return text(
            StatusCode::FORBIDDEN,
            "hotrun: this Host is not allowed (add it to reload.hosts)\n",
        );
    }
    match req.uri().path() {
        SCRIPT_PATH if matches!(*req.method(), Method::GET | Method::HEAD) => {
            let mut response = Response::new(full(CLIENT_JS));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(header::SERVER, HeaderValue::from_static("hotrun"));
            response
        }
        SOCKET_PATH => {
            let origin = header_str(&req, header::ORIGIN).unwrap_or_default();
            if !guard.origin_allowed(origin, &host) {
                return text(
                    StatusCode::FORBIDDEN,
                    "hotrun: this Origin is not allowed (add it to reload.origins)\n",
                );
            }
            let Some(accept) = websocket_accept(&req) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "hotrun: /__hotrun/ws takes websocket upgrades only\n",
                );
            };
            let Some(hub) = hub.join() else {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "hotrun: too many tabs are connected\n",
                );
            };
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    talk(ws, hub).await;
                }
            });
            let mut response = Response::new(empty());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(accept) = HeaderValue::from_str(&accept) {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
            response
        }
        _ => text(StatusCode::NOT_FOUND, "hotrun: not found\n"),
    }
}

/// `Sec-WebSocket-Accept` for a valid upgrade request, else `None`.
fn websocket_accept<B>(req: &Request<B>) -> Option<String> {
    let has_token = |name, token: &str| {
        header_str(req, name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if req.method() != Method::GET
        || !has_token(header::UPGRADE, "websocket")
        || !has_token(header::CONNECTION, "upgrade")
        || header_str(req, header::SEC_WEBSOCKET_VERSION) != Some("13")
    {
        return None;
    }
    let key = header_str(req, header::SEC_WEBSOCKET_KEY)?;
    Some(derive_accept_key(key.trim().as_bytes()))
}

/// One tab's connection: `hello`, then every message, with pings in between. A tab
/// that takes nothing for [`SEND_TIMEOUT`] is let go.
async fn talk<S>(ws: WebSocketStream<S>, joined: (String, mpsc::Receiver<Arc<str>>))
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (hello, mut messages) = joined;
    let (mut sink, mut incoming) = ws.split();
    let mut sink = TimedSink(&mut sink);
    if sink.send(Message::text(hello)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => {
                    if sink.send(Message::text(message.to_string())).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
            // The client sends nothing but pongs and, at the end, a close.
            frame = incoming.next() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    sink.close().await;
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A websocket's sending half whose sends give up after [`SEND_TIMEOUT`].
struct TimedSink<'a, S>(&'a mut S);

impl<S> TimedSink<'_, S>
where
    S: futures_util::Sink<Message> + Unpin,
{
    async fn send(&mut self, message: Message) -> Result<(), ()> {
        match tokio::time::timeout(SEND_TIMEOUT, self.0.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn close(&mut self) {
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.0.close()).await;
    }
}

/// Serve the script and the websocket on their own port (no proxy).
pub fn serve(
    listener: std::net::TcpListener,
    hub: Arc<Hub>,
    guard: Guard,
    notices: UnboundedSender<crate::core::event::Event>,
) -> Result<()> {
    serve_http(listener, "reload.listen", notices, move |req| {
        let response = respond(req, &hub, &guard);
        async move { Ok(response) }
    })
    .context("cannot serve browser reload")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(level: &str) -> Diagnostic {
        Diagnostic {
            level: level.into(),
            message: "m".into(),
            rendered: "\x1b[31merror\x1b[0m".into(),
            file: Some("src/main.rs".into()),
            line: Some(3),
            column: Some(5),
        }
    }

    #[test]
    fn a_command_s_failure_and_its_fix_leave_the_build_and_the_app_as_they_are() {
        let hub = Hub::new(Path::new("/nonexistent/project"));
        let hello = |hub: &Hub| -> Value { serde_json::from_str(&hub.join().unwrap().0).unwrap() };
        hub.send(&Browser::Building { files: Vec::new() });
        hub.send(&Browser::Error {
            diagnostics: vec![diagnostic("error")],
            title: Some("tailwind failed".into()),
            build_ended: false,
        });
        // Still building; the new app clears what the build knew, not the command's…
        hub.send(&Browser::Compiled);
        hub.send(&Browser::Error {
            diagnostics: vec![diagnostic("error")],
            title: Some("tailwind failed".into()),
            build_ended: false,
        });
        let failed = hello(&hub);
        assert_eq!(failed["state"], "failed");
        assert_eq!(failed["title"], "tailwind failed");
        // …and its fix leaves the app as it is: dead, here.
        hub.send(&Browser::Exited {
            status: ExitStatus {
                code: Some(1),
                signal: None,
            },
            output: vec!["boom".into()],
            rolled_back: false,
        });
        hub.send(&Browser::Fixed);
        assert_eq!(hello(&hub)["state"], "exited");
    }

    #[test]
    fn hello_tells_the_current_state_and_ids_change_when_a_new_app_is_live() {
        let hub = Hub::new(Path::new("/nonexistent/project"));
        let hello = |hub: &Hub| -> Value { serde_json::from_str(&hub.join().unwrap().0).unwrap() };
        let first = hello(&hub);
        assert_eq!(first["state"], "building");
        let (_, mut rx) = hub.join().unwrap();
        hub.send(&Browser::Compiled);
        let compiled: Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(compiled["type"], "compiled");
        assert_ne!(compiled["build_id"], first["build_id"]);
        assert_eq!(hello(&hub)["state"], "running");
        hub.send(&Browser::Error {
            diagnostics: vec![diagnostic("warning"), diagnostic("error")],
            title: None,
            build_ended: true,
        });
        let failed = hello(&hub);
        assert_eq!(failed["state"], "failed");
        assert!(failed.get("title").is_none());
        assert_eq!(failed["build_id"], compiled["build_id"]);
        // Errors first: warnings are left out when there are errors.
        assert_eq!(failed["diagnostics"].as_array().unwrap().len(), 1);
        assert_eq!(failed["diagnostics"][0]["line"], 3);
        // A restart of the old app (no build) keeps the errors…
        hub.send(&Browser::Compiled);
        assert_eq!(hello(&hub)["state"], "failed");
        // …a good build clears them.
        hub.send(&Browser::Building { files: vec![] });
        assert_eq!(hello(&hub)["state"], "building");
        hub.send(&Browser::Compiled);
        assert_eq!(hello(&hub)["state"], "running");
        hub.send(&Browser::Exited {
            status: ExitStatus {
                code: Some(3),
                signal: None,
            },
            output: vec!["thread 'main' panicked at src/main.rs:4:5".into()],
            rolled_back: false,
        });
        let exited = hello(&hub);
        assert_eq!(
            (exited["state"].as_str(), exited["code"].as_i64()),
            (Some("exited"), Some(3))
        );
        assert_eq!(
            exited["output"][0],
            "thread 'main' panicked at src/main.rs:4:5"
        );
    }

    #[test]
    fn paths_are_relative_to_the_root_and_closed_tabs_are_dropped() {
        let hub = Hub::new(Path::new("/nonexistent/project"));
        let (_, mut rx) = hub.join().unwrap();
        let (_, gone) = hub.join().unwrap();
        drop(gone);
        let clients = hub.send(&Browser::Css {
            path: "/nonexistent/project/static/site.css".into(),
        });
        assert_eq!(clients, 1);
        let css: Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(
            (css["type"].as_str(), css["path"].as_str()),
            (Some("css"), Some("static/site.css"))
        );
    }

    #[test]
    fn a_tab_that_falls_behind_is_let_go_and_tabs_are_capped() {
        let hub = Hub::new(Path::new("/nonexistent/project"));
        let (_, mut reading) = hub.join().unwrap();
        let (_, stalled) = hub.join().unwrap();
        for n in 0..CLIENT_QUEUE {
            assert_eq!(hub.send(&Browser::Ok), 2, "message {n}");
            reading.try_recv().unwrap();
        }
        // The stalled tab's queue is full: it is dropped (and reconnects).
        assert_eq!(hub.send(&Browser::Ok), 1);
        assert!(stalled.is_closed());
        let mut open = vec![reading];
        while let Some((_, rx)) = hub.join() {
            open.push(rx);
        }
        assert_eq!(open.len(), MAX_TABS);
        open.pop();
        assert!(hub.join().is_some(), "a closed tab frees its place");
    }

    #[test]
    fn overlay_diagnostics_are_cut_to_size() {
        let mut big = diagnostic("error");
        big.rendered = "é".repeat(RENDERED_MAX);
        let shown = diagnostics_json(&vec![big; 50]);
        let shown = shown.as_array().unwrap();
        assert!(shown.len() < 50);
        let bytes: usize = shown
            .iter()
            .map(|d| d["rendered"].as_str().unwrap().len())
            .sum();
        assert!(bytes <= DIAGNOSTICS_BYTES + 64, "{bytes}");
    }
}
