//! hotrun's HTTP front for the app (`proxy.listen`): it forwards every request to the
//! running app — also while a new build runs and after a failed one — and holds
//! requests only while no app answers and one is on its way (a build, the stop→start
//! gap of a swap, a restart), until it answers or `proxy.timeout` passes; when nothing
//! is coming (the build failed, the app exited) the 502 page that says why comes at
//! once. Websocket upgrades, SSE and chunked responses stream through unbuffered.
//! It only ever connects to the app's address. Headers pass unchanged but for what
//! the reload script and the page's truth need: see [`crate::web::cache`].
//!
//! The loop tells it whether the app answers through a [`Gate`], set from the state
//! *before* the effects of each event run, so no request is sent to an app that is
//! being stopped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::web::cache::{self, Epoch};
use crate::web::guard::Guard;
use crate::web::http::{full, serve_http, Body};
use crate::web::hub::{self, Hub};
use crate::web::inject;

/// Browser reload on the proxy's origin: the hub and who may connect to it.
pub type Reload = (Arc<Hub>, Guard);

/// Documents with a known length up to this size are read whole and sent with their
/// new length; larger ones are streamed like chunked answers.
const INJECT_MAX: u64 = 16 << 20;

/// Whether the app answers; if not, why, and whether one is on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// No app answers, one is coming (building, starting): requests wait for it.
    Waiting(String),
    /// No app answers and none is coming (the build failed, the app exited):
    /// requests get the 502 page at once.
    Down(String),
}

/// The loop's side of the proxy.
pub struct ProxyHandle {
    gate: watch::Sender<Gate>,
    in_flight: Arc<InFlight>,
    epoch: Arc<std::sync::atomic::AtomicU64>,
    app: Arc<std::sync::Mutex<SocketAddr>>,
}

impl ProxyHandle {
    /// Where requests go now.
    pub fn app(&self) -> Arc<std::sync::Mutex<SocketAddr>> {
        self.app.clone()
    }

    /// A future that ends when no request sent to the app still waits for its answer
    /// (or after `limit`): an app is stopped only then, so a swap fails no request.
    pub fn drained(&self, limit: Duration) -> impl std::future::Future<Output = ()> + 'static {
        let in_flight = self.in_flight.clone();
        async move {
            let _ = tokio::time::timeout(limit, async {
                loop {
                    let idle = in_flight.idle.notified();
                    tokio::pin!(idle);
                    idle.as_mut().enable();
                    if in_flight.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                        return;
                    }
                    idle.await;
                }
            })
            .await;
        }
    }

    /// Something changed (a file, the app): what browsers hold is to be asked for anew.
    pub fn changed(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set(&self, gate: Gate) {
        self.gate.send_if_modified(|current| {
            if *current == gate {
                false
            } else {
                *current = gate;
                true
            }
        });
    }
}

struct Shared {
    /// The app's address: the one hotrun gave it, or the one found it listens on.
    app: Arc<std::sync::Mutex<SocketAddr>>,
    timeout: Duration,
    reload: Option<Reload>,
    gate: watch::Receiver<Gate>,
    in_flight: Arc<InFlight>,
    /// This run (validators from another run of hotrun are never trusted) and its
    /// change epoch.
    run: u64,
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    fn epoch(&self) -> Epoch {
        Epoch {
            run: self.run,
            epoch: self.epoch.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

/// Serve `listener` and forward to `app`. Call from within the runtime.
pub fn start(
    listener: std::net::TcpListener,
    app: SocketAddr,
    timeout: Duration,
    reload: Option<Reload>,
    notices: UnboundedSender<crate::core::event::Event>,
) -> Result<ProxyHandle> {
    let (tx, rx) = watch::channel(Gate::Waiting("building".into()));
    let in_flight: Arc<InFlight> = Default::default();
    let epoch: Arc<std::sync::atomic::AtomicU64> = Default::default();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let app = Arc::new(std::sync::Mutex::new(app));
    let shared = Arc::new(Shared {
        app: app.clone(),
        timeout,
        reload,
        gate: rx,
        in_flight: in_flight.clone(),
        run,
        epoch: epoch.clone(),
    });
    serve_http(listener, "proxy.listen", notices, move |req| {
        handle(req, shared.clone())
    })
    .context("cannot serve the proxy")?;
    Ok(ProxyHandle {
        gate: tx,
        in_flight,
        epoch,
        app,
    })
}

async fn handle(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    if let Some((hub, guard)) = &shared.reload {
        if req.uri().path().starts_with(hub::PREFIX) {
            return Ok(hub::respond(req, hub, guard));
        }
    }
    let deadline = Instant::now() + shared.timeout;
    let mut gate = shared.gate.clone();
    let inject = shared.reload.is_some();
    let wants = Wants::of(&req);
    let cacheable = matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD);
    // The epoch the app's answer belongs to: read before the request goes out, so a
    // change made meanwhile makes the browser ask again.
    let sent_at = shared.epoch();
    // Only a page the browser asks for to show gets the script.
    let may_inject = inject && wants.page_like();
    cache::unstamp_preconditions(req.headers_mut());
    if may_inject {
        // The answer is read to add the reload script: ask for it uncompressed (a form
        // result too), and whole (the browser never stores a page with the script).
        let headers = req.headers_mut();
        headers.insert(
            hyper::header::ACCEPT_ENCODING,
            hyper::header::HeaderValue::from_static("identity"),
        );
        if cacheable {
            cache::strip_conditionals(headers);
        }
    } else if cacheable {
        cache::revalidate(req.headers_mut(), sent_at);
    }
    // HEAD reports the length GET would send: with the script, that is known only
    // from the body, so the app is asked with GET and the body is left unsent.
    let head_request = req.method() == hyper::Method::HEAD;
    if head_request && may_inject {
        *req.method_mut() = hyper::Method::GET;
    }
    let client_upgrade = is_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    // Connect first: a request is sent only over a connection the app accepted, so one
    // that finds no app (a crash, the gap of a swap) waits for the next one, unsent.
    let (sender, in_flight, live) = loop {
        if let Err(reason) = wait_open(&mut gate, deadline).await {
            return Ok(unavailable(&reason, inject));
        }
        // Counted before the gate is looked at again, so a swap waits for it (`drained`).
        let in_flight = shared.in_flight.enter();
        if *gate.borrow() != Gate::Open {
            continue;
        }
        let app = *shared.app.lock().unwrap_or_else(|e| e.into_inner());
        // The build of the app this request goes to: a page it answers carries that
        // id, even when a newer app takes over while it answers.
        let live = shared.reload.as_ref().map(|(hub, _)| hub.live_id());
        match connect(app).await {
            Ok(sender) => break (sender, in_flight, live),
            Err(_) if Instant::now() < deadline => {
                drop(in_flight);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Ok(unavailable(
                    &format!("cannot reach the app at {app}: {e}"),
                    inject,
                ))
            }
        }
    };
    let response = send(sender, req.map(|b| b.boxed()), client_upgrade).await;
    // An answer of known length stays in flight until its body has been passed on, so
    // a swap never stops the app in the middle of it. One that may never end (chunked,
    // SSE, an upgrade) counts only until its head came.
    let response = match response {
        Ok(response)
            if response.status() != StatusCode::SWITCHING_PROTOCOLS
                && hyper::body::Body::size_hint(response.body())
                    .exact()
                    .is_some() =>
        {
            Ok(response.map(|body| {
                body.map_frame(move |frame| {
                    let _until_the_body_is_done = &in_flight;
                    frame
                })
                .boxed()
            }))
        }
        other => {
            drop(in_flight);
            other
        }
    };
    // Once the app has the request it is never sent again: it may have acted on it.
    let response = match response {
        Ok(response) => response,
        Err(e) => return Ok(unavailable(&format!("the app did not answer: {e}"), inject)),
    };
    let (mut response, injected) = match &shared.reload {
        Some((hub, _)) if may_inject => {
            let live = live.unwrap_or_else(|| hub.live_id());
            inject_script(response, &live, wants == Wants::Page).await
        }
        _ => (response, false),
    };
    if injected {
        cache::never_store(response.headers_mut());
    } else if cacheable && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        cache::stamp(response.headers_mut(), sent_at);
    }
    Ok(response)
}

/// What the browser asks for, by the request's fetch metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    /// A top-level navigation (or a frame's): a page to show, whatever its tags.
    Page,
    /// No fetch metadata (an older client) but it accepts HTML: a page if it looks
    /// like one.
    MaybePage,
    /// `fetch`/XHR, htmx and Turbo: a part of a page, never given the script.
    Fragment,
    /// Scripts, images, stylesheets…
    Other,
}

impl Wants {
    fn of<B>(req: &Request<B>) -> Wants {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_ascii_lowercase())
        };
        let has = |name: &str| req.headers().contains_key(name);
        let dest = header("sec-fetch-dest");
        if has("hx-request")
            || has("turbo-frame")
            || dest.as_deref() == Some("empty")
            || header("x-requested-with").as_deref() == Some("xmlhttprequest")
        {
            return Wants::Fragment;
        }
        match dest.as_deref() {
            Some("document" | "iframe" | "frame") => Wants::Page,
            _ if header("sec-fetch-mode").as_deref() == Some("navigate") => Wants::Page,
            Some(_) => Wants::Other,
            None if header("accept").is_some_and(|a| a.contains("text/html")) => Wants::MaybePage,
            None => Wants::Other,
        }
    }

    fn page_like(self) -> bool {
        matches!(self, Wants::Page | Wants::MaybePage)
    }
}

/// Requests sent to the app whose answer has not begun yet, or (when its length is
/// known) has not been passed on whole.
#[derive(Default)]
struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightGuard(self.clone())
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// Wait until the gate is open, or the deadline; `Err(reason)` at the deadline, or at
/// once when no app is coming.
async fn wait_open(gate: &mut watch::Receiver<Gate>, deadline: Instant) -> Result<(), String> {
    loop {
        let current = gate.borrow_and_update().clone();
        let reason = match current {
            Gate::Open => return Ok(()),
            Gate::Down(reason) => return Err(reason),
            Gate::Waiting(reason) => reason,
        };
        match tokio::time::timeout_at(deadline, gate.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Err(reason),
        }
    }
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(hyper::header::UPGRADE)
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;

async fn connect(app: SocketAddr) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(app).await?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender)
}

async fn send(
    mut sender: Sender,
    req: Request<Body>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<Body>> {
    let mut response = sender.send_request(req).await?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let app_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                if let (Ok(client), Ok(app)) = tokio::join!(client_upgrade, app_upgrade) {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(client),
                        &mut TokioIo::new(app),
                    )
                    .await;
                }
            });
        }
    }
    Ok(response.map(|b| b.boxed()))
}

/// The one place a response body from the app is changed on its way to the browser:
/// the reload script goes into HTML documents — those with document tags, and any
/// HTML answer to a navigation (`document`). Everything else — fragments, other types,
/// encodings hotrun cannot read — passes unchanged. Also says whether the answer
/// carries (or, streamed, may carry) the script.
async fn inject_script(
    response: Response<Body>,
    build_id: &str,
    document: bool,
) -> (Response<Body>, bool) {
    use hyper::header::{
        CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    };
    let headers = response.headers();
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(inject::is_html);
    // No body, or a part of one (206): nothing to add to.
    let no_body = matches!(response.status().as_u16(), 100..=199 | 204 | 206 | 304);
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let decoder = match encoding.as_deref() {
        None | Some("identity") => Some(Decoder::None),
        Some("gzip" | "x-gzip") => Some(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()))),
        Some("deflate") => Some(Decoder::Deflate(
            flate2::write::ZlibDecoder::new(Vec::new()),
        )),
        Some(_) => None,
    };
    let (Some(mut decoder), true, false) = (decoder, html, no_body) else {
        return (response, false);
    };
    let nonce = headers
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(inject::csp_nonce);
    let tag = inject::script_tag(nonce.as_deref(), build_id);
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (mut parts, body) = response.into_parts();
    match length {
        // A body of known length is read whole and sent with its new length.
        Some(length) if length <= INJECT_MAX => {
            let Ok(collected) = body.collect().await else {
                return (unavailable("the app's answer broke off", true), false);
            };
            let raw = collected.to_bytes();
            let decoded = decoder.feed(&raw).and_then(|mut bytes| {
                bytes.extend(decoder.finish()?);
                Ok(bytes)
            });
            // What cannot be decoded or is no document goes on as it came.
            let injected = decoded
                .ok()
                .and_then(|b| inject::inject_all(&tag, &b, document));
            let Some(bytes) = injected else {
                return (Response::from_parts(parts, full(raw)), false);
            };
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.remove(ETAG);
            parts.headers.insert(
                CONTENT_LENGTH,
                hyper::header::HeaderValue::from(bytes.len()),
            );
            (Response::from_parts(parts, full(bytes)), true)
        }
        // Streamed (chunked) answers stay streamed, the script added on the way.
        _ => {
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.remove(CONTENT_LENGTH);
            parts.headers.remove(ETAG);
            let injector = match document {
                true => inject::Injector::new(tag).document(),
                false => inject::Injector::new(tag),
            };
            let stream =
                futures_util::stream::unfold(Some((body, injector, decoder)), |state| async move {
                    let (mut body, mut injector, mut decoder) = state?;
                    loop {
                        match body.frame().await {
                            Some(Ok(frame)) => match frame.into_data() {
                                Ok(data) => {
                                    // A corrupt stream ends where it went wrong.
                                    let Ok(decoded) = decoder.feed(&data) else {
                                        return None;
                                    };
                                    let out = injector.push(&decoded);
                                    if !out.is_empty() {
                                        let frame = hyper::body::Frame::data(Bytes::from(out));
                                        return Some((Ok(frame), Some((body, injector, decoder))));
                                    }
                                }
                                Err(frame) => {
                                    return Some((Ok(frame), Some((body, injector, decoder))))
                                }
                            },
                            Some(Err(e)) => return Some((Err(e), None)),
                            None => {
                                let mut out = injector.push(&decoder.finish().unwrap_or_default());
                                out.extend(injector.finish());
                                let frame = hyper::body::Frame::data(Bytes::from(out));
                                return Some((Ok(frame), None));
                            }
                        }
                    }
                });
            let streamed =
                Response::from_parts(parts, http_body_util::StreamBody::new(stream).boxed());
            (streamed, true)
        }
    }
}

/// Undoes the `Content-Encoding` of an HTML answer, chunk by chunk.
enum Decoder {
    None,
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    fn feed(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            Decoder::None => Ok(data.to_vec()),
            Decoder::Gzip(d) => {
                d.write_all(data)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Deflate(d) => {
                d.write_all(data)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }

    fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::None => Ok(Vec::new()),
            Decoder::Gzip(d) => {
                d.try_finish()?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Deflate(d) => {
                d.try_finish()?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }
}

/// The 502 page: what hotrun is doing instead of serving. With browser reload it
/// carries the reload script (which reloads once the app is up, or shows the build's
/// errors); without, it refreshes itself every two seconds.
fn unavailable(reason: &str, reload: bool) -> Response<Body> {
    let text = escape(reason);
    let refresh = if reload {
        // Served by no app: the client reloads it as soon as one is up.
        String::from_utf8_lossy(&inject::script_tag(None, "none")).into_owned()
    } else {
        "<meta http-equiv=\"refresh\" content=\"2\">".into()
    };
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hotrun: {text}</title>\
         {refresh}</head>\
         <body style=\"font-family: system-ui, sans-serif; margin: 3em\">\
         <h1>No app is answering</h1><p>hotrun: {text}.</p>\
         <p>This page reloads by itself.</p></body></html>\n"
    );
    let mut response = Response::new(full(page));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wants(headers: &[(&str, &str)]) -> Wants {
        let mut req = Request::builder().uri("/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Wants::of(&req.body(()).unwrap())
    }

    #[test]
    fn what_a_request_asks_for() {
        assert_eq!(wants(&[("Sec-Fetch-Dest", "document")]), Wants::Page);
        assert_eq!(wants(&[("Sec-Fetch-Dest", "iframe")]), Wants::Page);
        assert_eq!(wants(&[("Sec-Fetch-Mode", "navigate")]), Wants::Page);
        assert_eq!(
            wants(&[("Sec-Fetch-Dest", "empty"), ("Accept", "text/html")]),
            Wants::Fragment
        );
        assert_eq!(
            wants(&[("Sec-Fetch-Dest", "document"), ("HX-Request", "true")]),
            Wants::Fragment
        );
        assert_eq!(
            wants(&[("Sec-Fetch-Dest", "document"), ("Turbo-Frame", "main")]),
            Wants::Fragment
        );
        assert_eq!(
            wants(&[("X-Requested-With", "XMLHttpRequest")]),
            Wants::Fragment
        );
        assert_eq!(wants(&[("Sec-Fetch-Dest", "script")]), Wants::Other);
        assert_eq!(
            wants(&[("Sec-Fetch-Dest", "image"), ("Accept", "text/html")]),
            Wants::Other
        );
        assert_eq!(wants(&[("Accept", "text/html,*/*")]), Wants::MaybePage);
        assert_eq!(wants(&[("Accept", "*/*")]), Wants::Other);
        assert_eq!(wants(&[]), Wants::Other);
    }
}
