//! The addresses hotrun serves and watches: the `run.listen` sockets bound once at start
//! and handed to every app generation, the proxy's public socket and the app's own
//! address behind it, and the readiness probe that says when a new app answers.

use std::time::Duration;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use anyhow::{Context, Result};

use crate::config::settings::Settings;

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
                let (listener, moved) = bind_reload(settings.reload.listen)?;
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

/// Where to connect to reach a socket listening on `addr`: a wildcard is reached
/// through loopback of its family.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Bind `reload.listen`. When another hotrun holds it, take the next free port (the
/// caller says so); anything else there is an error.
pub fn bind_reload(addr: SocketAddr) -> Result<(std::net::TcpListener, bool)> {
    let error = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another program serves there; set reload.listen to a free address, or --no-reload)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr} (`reload.listen`): {e}{hint}")
    };
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => return Ok((listener, false)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && is_hotrun(addr) => {}
        Err(e) => return Err(error(e)),
    }
    // Another hotrun has it: the next free port.
    let mut candidate = addr;
    for _ in 0..100 {
        candidate.set_port(candidate.port().checked_add(1).unwrap_or(1024));
        if let Ok(listener) = std::net::TcpListener::bind(candidate) {
            return Ok((listener, true));
        }
    }
    anyhow::bail!(
        "cannot listen on {addr} (`reload.listen`): another hotrun has it, and the next 100 ports are taken"
    )
}

/// Whether a hotrun serves its reload script at `addr`.
fn is_hotrun(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    // A hotrun that has just bound the port answers once its loop runs: give it time.
    let timeout = Duration::from_secs(2);
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!(
        "HEAD {} HTTP/1.0\r\nHost: localhost\r\n\r\n",
        crate::web::hub::SCRIPT_PATH
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = Vec::new();
    let _ = stream.take(4096).read_to_end(&mut head);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    head.starts_with("http/1.") && head.contains("\nserver: hotrun")
}
