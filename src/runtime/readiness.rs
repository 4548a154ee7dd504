//! When a new app counts as ready: `run.ready`, a TCP connect to the app behind the
//! proxy, or an HTTP answer on the first listen socket; and where an app that listens
//! elsewhere than told really listens, found in `/proc`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::settings::Settings;
use crate::config::values::Ready;
use crate::core::event::Event;
use crate::process::procfs;
use crate::web::sockets::reachable;

/// How to tell a new app is ready: `run.ready`, else a TCP connect to the app behind the
/// proxy, else an HTTP request to the first listen socket (any status: a TCP connect
/// would succeed at once on hotrun's own socket), else none.
pub fn probe(
    settings: &Settings,
    listen: &[SocketAddr],
    proxy_app: Option<SocketAddr>,
) -> Option<Probe> {
    match &settings.run.ready {
        Some(Ready::Tcp(addr)) => Some(Probe::Tcp(*addr)),
        Some(Ready::Http(url)) => parse_url(url).map(|(addr, path)| Probe::Http {
            addr,
            path,
            any_status: false,
        }),
        None => match (proxy_app, listen.first()) {
            (Some(app), _) => Some(Probe::Tcp(app)),
            (None, Some(addr)) => Some(Probe::Http {
                addr: *addr,
                path: "/".into(),
                any_status: true,
            }),
            (None, None) => None,
        },
    }
}

/// `http://host:port/path` → the address and the path.
fn parse_url(url: &str) -> Option<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    crate::config::values::parse_address(&host)
        .ok()
        .map(|a| (a, path))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Tcp(SocketAddr),
    Http {
        addr: SocketAddr,
        path: String,
        /// Any answer counts (listen mode); else 2xx or 3xx.
        any_status: bool,
    },
}

impl Probe {
    /// One attempt.
    pub async fn check(&self) -> bool {
        let attempt = async {
            match self {
                Probe::Tcp(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
                Probe::Http {
                    addr,
                    path,
                    any_status,
                } => http_status(*addr, path)
                    .await
                    .is_some_and(|status| *any_status || (200..400).contains(&status)),
            }
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .unwrap_or(false)
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hotrun-probe\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).await.ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// A starting app that does not answer where it was told to is looked for in `/proc`
/// after this long (one that binds another port first, a metrics port, has had time to
/// bind its own)…
const FIND_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// …and then this often.
const FIND_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// An app hotrun gave no address is looked for this long after it starts.
const DIRECT_FIND_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Finds where a starting app listens when it does not answer where hotrun told it
/// to: its process tree's listening sockets, from `/proc` (see `process::procfs::listening_under`).
pub struct Finder {
    /// Where the app was told to listen (`PORT`), or the first `run.listen` address.
    pub given: std::net::SocketAddr,
    /// Behind the proxy: where requests go, moved to what the app listens on.
    pub target: Option<Arc<std::sync::Mutex<std::net::SocketAddr>>>,
    /// The `run.listen` addresses (listen mode): the app should take these.
    pub listen: Vec<std::net::SocketAddr>,
    /// Said once per run.
    pub said: Arc<std::sync::atomic::AtomicBool>,
}

impl Finder {
    /// The probe for where requests go now.
    fn probe(&self, probe: Probe) -> Probe {
        match (&self.target, probe) {
            (Some(target), Probe::Tcp(_)) => {
                Probe::Tcp(*target.lock().unwrap_or_else(|e| e.into_inner()))
            }
            (_, probe) => probe,
        }
    }

    fn say(&self, tx: &UnboundedSender<Event>, message: String) {
        if !self.said.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let _ = tx.send(Event::Notice(message));
        }
    }

    /// The app listens on `found`; behind the proxy, send requests there.
    fn look(&mut self, found: &[std::net::SocketAddr], tx: &UnboundedSender<Event>) {
        // On $PORT, be it on loopback or on every address.
        let on_given = found
            .iter()
            .any(|a| a.port() == self.given.port() && reachable(*a).ip().is_loopback());
        if let (Some(target), true) = (&self.target, on_given) {
            // It listens on $PORT (and maybe elsewhere too: a metrics port). In listen
            // mode the passed socket is in its tree anyway, taken or not.
            *target.lock().unwrap_or_else(|e| e.into_inner()) = self.given;
            return;
        }
        let own: Vec<_> = found
            .iter()
            .filter(|a| !self.listen.contains(a) && **a != self.given)
            .filter(|a| a.ip().is_loopback() || a.ip().is_unspecified())
            .copied()
            .collect();
        let Some(first) = own.first().copied() else {
            return;
        };
        let others = if own.len() > 1 {
            let rest: Vec<String> = own[1..].iter().map(|a| a.to_string()).collect();
            format!(
                " (it also listens on {}; hotrun took the first)",
                rest.join(", ")
            )
        } else {
            String::new()
        };
        match &self.target {
            Some(target) => {
                let reach = reachable(first);
                *target.lock().unwrap_or_else(|e| e.into_inner()) = reach;
                self.say(
                    tx,
                    format!(
                        "the app listens on {first}, not on the PORT={} it was given{others}: the proxy forwards to {reach}. To say so, have the app listen on $PORT, or set proxy.app = \"{reach}\"",
                        self.given.port()
                    ),
                );
            }
            None => self.say(
                tx,
                format!(
                    "the app listens on {first} itself{others}, not on the socket hotrun passes for run.listen {} (fd 3, LISTEN_FDS): requests there reach nothing. Have the app take the socket (listenfd, sd_listen_fds), or use --proxy instead of --listen",
                    self.given
                ),
            ),
        }
    }

    /// The readiness timeout passed and the app listens nowhere hotrun looked.
    fn nowhere(&self, tx: &UnboundedSender<Event>) {
        let expected = match &self.target {
            Some(_) => format!("on $PORT ({})", self.given.port()),
            None => format!("on the socket passed as fd 3 ({})", self.given),
        };
        self.say(
            tx,
            format!("the app listens nowhere hotrun can see: it should listen {expected}, or set run.ready to where it does"),
        );
    }
}

/// A new app generation, as readiness follows it.
pub struct Watched {
    pub gen: u64,
    /// Its helper: the app and all it starts are below it.
    pub helper: u32,
    /// Set once the helper is reaped: stop then.
    pub reaped: Arc<AtomicBool>,
}

/// Probe the app until it answers (then `AppReady`), is gone or `until` passes. An app
/// that does not answer where it was told to is looked for where it does listen.
pub async fn until_ready(
    app: Watched,
    mut probe: Probe,
    mut finder: Option<Finder>,
    until: tokio::time::Instant,
    tx: UnboundedSender<Event>,
) {
    // Most apps answer within a few milliseconds: ask often at first, so the swap
    // waits for the app, not for the probe; then back off.
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    // A look in `/proc` runs beside the probe, never holding it up: with many
    // connections open (a client hammering the old app) the socket tables are long.
    let mut looking: Option<tokio::task::JoinHandle<Vec<SocketAddr>>> = None;
    let mut looked = start;
    while !app.reaped.load(Ordering::SeqCst) && tokio::time::Instant::now() < until {
        if let Some(finder) = &finder {
            probe = finder.probe(probe);
        }
        if probe.check().await {
            if let Some(look) = looking.take() {
                look.abort();
            }
            let _ = tx.send(Event::AppReady { gen: app.gen });
            return;
        }
        if looking.as_ref().is_some_and(|l| l.is_finished()) {
            let found = looking
                .take()
                .and_then(futures_util::FutureExt::now_or_never)
                .and_then(Result::ok);
            if let (Some(found), Some(f)) = (found, &mut finder) {
                f.look(&found, &tx);
            }
            looked = tokio::time::Instant::now();
        }
        if finder.is_some()
            && looking.is_none()
            && start.elapsed() >= FIND_AFTER
            && looked.elapsed() >= FIND_EVERY
        {
            looking = Some(tokio::spawn(procfs::listening(app.helper)));
        }
        tokio::time::sleep(pause).await;
        if start.elapsed() > Duration::from_millis(500) {
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
    if let Some(look) = looking.take() {
        look.abort();
    }
    if let Some(f) = &finder {
        if !app.reaped.load(Ordering::SeqCst) {
            f.nowhere(&tx);
        }
    }
}

/// An app hotrun gave no address: find where it listens once it starts, to show the
/// URL (`AppFound`, once per address; `shown` is the last one shown).
pub async fn find_direct(
    app: Watched,
    tx: UnboundedSender<Event>,
    shown: Arc<Mutex<Option<String>>>,
) {
    let until = tokio::time::Instant::now() + DIRECT_FIND_FOR;
    // An app that never listens (a worker) is looked for less and less often.
    let mut pause = FIND_EVERY;
    while !app.reaped.load(Ordering::SeqCst) && tokio::time::Instant::now() < until {
        let found = procfs::listening(app.helper).await;
        if let Some(addr) = found
            .iter()
            .find(|a| a.ip().is_loopback() || a.ip().is_unspecified())
        {
            let url = format!("http://{}", reachable(*addr));
            let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
            if shown.as_deref() != Some(url.as_str()) {
                *shown = Some(url.clone());
                let _ = tx.send(Event::AppFound { url });
            }
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:3000/health"),
            Some((SocketAddr::from(([127, 0, 0, 1], 3000)), "/health".into()))
        );
        assert_eq!(
            parse_url("http://localhost:8080"),
            Some((SocketAddr::from(([127, 0, 0, 1], 8080)), "/".into()))
        );
        assert_eq!(parse_url("https://x"), None);
    }
}
