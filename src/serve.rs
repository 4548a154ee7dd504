//! The addresses hotrun serves and watches: the `run.listen` sockets bound once at start
//! and handed to every app generation, the proxy's public socket and the app's own
//! address behind it, and the readiness probe that says when a new app answers.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::settings::{Ready, Settings};

/// Sockets bound at start; they live as long as hotrun.
pub struct Sockets {
    pub listen: Vec<TcpListener>,
    pub proxy: Option<ProxySockets>,
    /// The browser-reload server's own socket (without the proxy).
    pub reload: Option<ReloadSocket>,
}

pub struct ReloadSocket {
    pub listener: TcpListener,
    /// `reload.listen` was taken by another hotrun: this is the next free port.
    pub moved: bool,
}

pub struct ProxySockets {
    pub listener: TcpListener,
    /// Where the app listens (`proxy.app`, or a free port passed as `PORT`).
    pub app: SocketAddr,
    pub pass_port: bool,
}

impl Sockets {
    /// Bind everything now, so a busy port is a clear error before anything runs.
    pub fn bind(settings: &Settings) -> Result<Sockets> {
        let mut listen = Vec::new();
        for addr in &settings.run.listen {
            listen.push(bind(*addr, "run.listen")?);
        }
        let proxy = match &settings.proxy {
            Some(p) => {
                let listener = bind(p.listen, "proxy.listen")?;
                let (app, pass_port) = match p.app {
                    Some(app) => (app, false),
                    None => (
                        free_port().context("cannot find a free port for the app")?,
                        true,
                    ),
                };
                Some(ProxySockets {
                    listener,
                    app,
                    pass_port,
                })
            }
            None => None,
        };
        let reload = match (settings.reload.enabled, &proxy) {
            (true, None) => {
                let (listener, moved) = crate::reload::bind(settings.reload.listen)?;
                Some(ReloadSocket { listener, moved })
            }
            // With the proxy, the reload script and websocket are on its origin.
            _ => None,
        };
        Ok(Sockets {
            listen,
            proxy,
            reload,
        })
    }

    pub fn listen_fds(&self) -> Vec<RawFd> {
        self.listen.iter().map(|l| l.as_raw_fd()).collect()
    }

    /// Environment the app needs to find its address.
    pub fn app_env(&self) -> Vec<(String, String)> {
        match &self.proxy {
            Some(p) if p.pass_port => vec![("PORT".into(), p.app.port().to_string())],
            _ => Vec::new(),
        }
    }
}

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

fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another server, or another hotrun, running there?)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr} (`{key}`): {e}{hint}")
    })?;
    Ok(listener)
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
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
    crate::settings::parse_address(&host)
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
