//! hotrun's HTTP front for the app (`proxy.listen`): it forwards every request to the
//! running app — also while a new build runs and after a failed one — and holds
//! requests only while no app answers (first build, the stop→start gap of a swap, after
//! a crash), until one does or `proxy.timeout` passes; then a 502 page says what hotrun
//! is doing. Websocket upgrades, SSE and chunked responses stream through unbuffered.
//! It only ever connects to the app's address; headers pass unchanged.
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
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::time::Instant;

type Body = BoxBody<Bytes, hyper::Error>;

/// Whether the app answers; if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    Closed(String),
}

/// The loop's side of the proxy.
pub struct ProxyHandle {
    gate: watch::Sender<Gate>,
}

impl ProxyHandle {
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
    app: SocketAddr,
    timeout: Duration,
    gate: watch::Receiver<Gate>,
}

/// Serve `listener` and forward to `app`. Call from within the runtime.
pub fn start(
    listener: std::net::TcpListener,
    app: SocketAddr,
    timeout: Duration,
) -> Result<ProxyHandle> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener).context("cannot serve the proxy")?;
    let (tx, rx) = watch::channel(Gate::Closed("building".into()));
    let shared = Arc::new(Shared {
        app,
        timeout,
        gate: rx,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(req, shared.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(ProxyHandle { gate: tx })
}

async fn handle(
    mut req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    let deadline = Instant::now() + shared.timeout;
    let mut gate = shared.gate.clone();
    let mut client_upgrade = is_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    // Requests without a body can be sent again if the app went away under them.
    let retryable = req.headers().get(hyper::header::CONTENT_LENGTH).is_none()
        && req
            .headers()
            .get(hyper::header::TRANSFER_ENCODING)
            .is_none()
        && client_upgrade.is_none();
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    loop {
        if let Err(reason) = wait_open(&mut gate, deadline).await {
            return Ok(unavailable(&reason));
        }
        let mut again = Request::new(match body.take() {
            Some(b) => b.boxed(),
            None => Empty::new().map_err(|n| match n {}).boxed(),
        });
        *again.method_mut() = parts.method.clone();
        *again.uri_mut() = parts.uri.clone();
        *again.version_mut() = parts.version;
        *again.headers_mut() = parts.headers.clone();
        match forward(again, shared.app, client_upgrade.take()).await {
            Ok(response) => return Ok(response),
            Err(e) if retryable && Instant::now() < deadline => {
                // The app went away between our look at the gate and the request (a
                // crash, a swap): wait for the next one.
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Ok(unavailable(&format!(
                    "cannot reach the app at {}: {e}",
                    shared.app
                )))
            }
        }
    }
}

/// Wait until the gate is open, or the deadline; `Err(reason)` at the deadline.
async fn wait_open(gate: &mut watch::Receiver<Gate>, deadline: Instant) -> Result<(), String> {
    loop {
        let current = gate.borrow_and_update().clone();
        let reason = match current {
            Gate::Open => return Ok(()),
            Gate::Closed(reason) => reason,
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

async fn forward(
    req: Request<Body>,
    app: SocketAddr,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<Body>> {
    let stream = tokio::net::TcpStream::connect(app).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(conn.with_upgrades());
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
    Ok(transform(response.map(|b| b.boxed())))
}

/// The one place a response from the app can be changed on its way to the browser:
/// where the browser-reload script will be injected into HTML documents. Today every
/// response passes unchanged.
fn transform(response: Response<Body>) -> Response<Body> {
    response
}

/// The 502 page: what hotrun is doing instead of serving.
fn unavailable(reason: &str) -> Response<Body> {
    let text = escape(reason);
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hotrun: {text}</title>\
         <meta http-equiv=\"refresh\" content=\"2\"></head>\
         <body style=\"font-family: system-ui, sans-serif; margin: 3em\">\
         <h1>No app is answering</h1><p>hotrun: {text}.</p>\
         <p>This page reloads by itself.</p></body></html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(page)).map_err(|n| match n {}).boxed());
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
