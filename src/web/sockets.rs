//! The addresses hotrun serves and watches: the `run.listen` sockets bound once at start
//! and handed to every app generation, the proxy's public socket and the app's own
//! address behind it, and the readiness probe that says when a new app answers.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::settings::{Ready, Settings};

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
                let (listener, moved) = crate::web::hub::bind(settings.reload.listen)?;
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
    crate::config::settings::parse_address(&host)
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

/// [`listening_under`] off the loop's thread (it reads `/proc` for every process).
pub async fn listening(root: u32) -> Vec<SocketAddr> {
    tokio::task::spawn_blocking(move || listening_under(root))
        .await
        .unwrap_or_default()
}

/// The TCP addresses processes under `root` (not `root` itself: the helper) listen on,
/// from `/proc`: each process's socket inodes matched in `/proc/net/tcp` and `tcp6`.
/// Linux only, no privileges needed; sorted, without duplicates.
pub fn listening_under(root: u32) -> Vec<SocketAddr> {
    let mut inodes = std::collections::HashSet::new();
    for pid in descendants(root) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != "0A" || !inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                continue;
            }
            if let Some(addr) = parse_proc_address(local) {
                found.push(addr);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6), as `/proc/net/tcp*`
/// writes them: each 32-bit word of the address printed as a number in the host's byte
/// order.
fn parse_proc_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if ip.len() % 8 != 0 || !ip.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for i in 0..ip.len() / 8 {
        let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod discovery_tests {
    use super::*;

    #[test]
    fn proc_net_addresses_parse() {
        let parse = |t| parse_proc_address(t).map(|a| a.to_string());
        assert_eq!(parse("0100007F:1F90").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(parse("00000000:0050").as_deref(), Some("0.0.0.0:80"));
        assert_eq!(
            parse("00000000000000000000000001000000:1F90").as_deref(),
            Some("[::1]:8080")
        );
        assert_eq!(
            parse("00000000000000000000000000000000:0050").as_deref(),
            Some("[::]:80")
        );
        assert_eq!(parse("nonsense"), None);
    }

    #[test]
    fn a_listening_child_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // This test process is below its parent.
        let parent = std::os::unix::process::parent_id();
        assert!(listening_under(parent).contains(&addr));
    }
}

/// Every process below `root`, from each process's parent in `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            Some((
                pid,
                crate::process::supervisor::parent_of(pid as i32)? as u32,
            ))
        })
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, parent) in &parents {
            if *parent == p {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}
