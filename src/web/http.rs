//! HTTP basics both of hotrun's servers share (the proxy and the reload server):
//! the connection loop with its bounds, the body type, a request target made plain
//! before any rule looks at it, and the small answers hotrun writes itself.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// A request head must be whole this long after hotrun starts reading it — on a
/// kept-alive connection, from the end of the last answer, so this is also how long an
/// idle connection stays open. Answers that stream (SSE) and upgraded connections
/// (websockets) are never timed out.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many connections at once on each of hotrun's servers (upgraded ones
/// included); more wait in the OS's queue until one closes.
pub const MAX_CONNECTIONS: usize = 256;

/// Serve HTTP/1 (with upgrades) on `listener` for as long as hotrun runs, answering
/// every request with `handle`; `name` (`proxy.listen`) is said when the connection
/// cap is reached. Call from within the runtime.
pub fn serve_http<H, F>(
    listener: std::net::TcpListener,
    name: &'static str,
    notices: UnboundedSender<crate::core::event::Event>,
    handle: H,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let handle = Arc::new(handle);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut said = false;
        loop {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if !std::mem::replace(&mut said, true) {
                        let _ = notices.send(crate::core::event::Event::Notice(format!(
                            "{name}: {MAX_CONNECTIONS} connections are open, the most hotrun serves at once; new ones wait until one closes"
                        )));
                    }
                    match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    }
                }
            };
            if slots.available_permits() > MAX_CONNECTIONS / 2 {
                said = false;
            }
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, say: don't spin, try again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let handle = handle.clone();
            tokio::spawn(async move {
                // Every server checks request targets the same way, before its handler.
                let service = hyper::service::service_fn(move |mut req| {
                    let refused = normalize_target(&mut req).err();
                    let answer = refused.is_none().then(|| handle(req));
                    async move {
                        match (answer, refused) {
                            (Some(answer), _) => answer.await,
                            (None, why) => Ok(bad_request(why.unwrap_or_default())),
                        }
                    }
                });
                // The slot goes with the stream, into an upgraded connection too.
                let stream = Counted {
                    stream,
                    _slot: slot,
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(())
}

/// A connection that holds one of its server's slots for as long as it is open.
struct Counted {
    stream: tokio::net::TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|n| match n {}).boxed()
}

/// Make a request's target plain before any rule looks at it: one `Host` header only;
/// an absolute-form target (`GET http://host/path`) becomes its path, with its
/// authority as the `Host` (which it overrides, RFC 9112 §3.2.2), so the `Host` rules
/// see it; `CONNECT` and targets of other schemes are refused (hotrun forwards to the
/// app alone, over http). Why, when the request is refused (see [`bad_request`]).
pub fn normalize_target<B>(req: &mut Request<B>) -> Result<(), &'static str> {
    let bad = Err;
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return bad("hotrun: a request has one Host header\n");
    }
    if req.method() == Method::CONNECT {
        return bad("hotrun: CONNECT is not served here (hotrun is no forward proxy)\n");
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return Ok(());
    };
    if req.uri().scheme_str() != Some("http") {
        return bad("hotrun: only http targets are served here\n");
    }
    let Ok(host) = HeaderValue::from_str(authority.as_str()) else {
        return bad("hotrun: the target's host is not valid\n");
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    match path.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return bad("hotrun: the target's path is not valid\n"),
    }
    req.headers_mut().insert(header::HOST, host);
    Ok(())
}

/// The answer to a request [`normalize_target`] refused.
pub fn bad_request(why: &'static str) -> Response<Body> {
    text(StatusCode::BAD_REQUEST, why)
}

pub fn empty() -> Body {
    Empty::new().map_err(|n| match n {}).boxed()
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets_are_made_plain() {
        let request = |target: &str, hosts: &[&str]| {
            let mut b = Request::builder().uri(target);
            for h in hosts {
                b = b.header(header::HOST, *h);
            }
            let mut req = b.body(()).unwrap();
            normalize_target(&mut req).map(|()| {
                let host = req
                    .headers()
                    .get(header::HOST)
                    .map(|h| h.to_str().unwrap().to_string());
                (req.uri().to_string(), host)
            })
        };
        assert_eq!(
            request("/a?b", &["localhost:3000"]).ok(),
            Some(("/a?b".into(), Some("localhost:3000".into())))
        );
        // The target's authority is the Host, and the Host rules see it.
        assert_eq!(
            request("http://evil.example/__hotrun/ws", &["127.0.0.1:3000"]).ok(),
            Some(("/__hotrun/ws".into(), Some("evil.example".into())))
        );
        assert_eq!(
            request("http://localhost:3000", &[]).ok(),
            Some(("/".into(), Some("localhost:3000".into())))
        );
        for (target, hosts) in [
            ("/", &["localhost", "evil.example"][..]),
            ("https://localhost:3000/", &[][..]),
        ] {
            let why = request(target, hosts).unwrap_err();
            assert_eq!(
                bad_request(why).status(),
                StatusCode::BAD_REQUEST,
                "{target} {hosts:?}"
            );
        }
    }
}
