//! When a new app counts as ready: `run.ready`, a TCP connect to the app behind the
//! proxy, or an HTTP answer on the first listen socket.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::settings::Settings;
use crate::config::values::Ready;

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
