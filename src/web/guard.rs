//! Who may use the reload socket and script: the hosts a request may name and the
//! origins a tab may come from, so a page elsewhere cannot drive it (DNS rebinding,
//! cross-site websockets).

use std::net::IpAddr;

/// Who may connect: the hosts and origins a tab may come from (a page elsewhere must
/// not drive the reload socket).
#[derive(Debug, Clone)]
pub struct Guard {
    /// Extra `Host` names (`reload.hosts`).
    pub hosts: Vec<String>,
    /// Extra origins (`reload.origins`).
    pub origins: Vec<String>,
    /// Served on the proxy's origin: the `Origin` must be that origin.
    pub proxy: bool,
}

impl Guard {
    /// Whether the `Host` header names this machine (or a listed name).
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let Some(name) = host_name(&host) else {
            return false;
        };
        is_loopback_name(name)
            || self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host) || h.eq_ignore_ascii_case(name))
    }

    /// Whether a websocket from a page of `origin` may connect to `host`.
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/');
        if self
            .origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        // The proxy serves http only: a page it served has an http origin. Without it,
        // the page comes from the app, which may serve https itself.
        let https = (!self.proxy)
            .then(|| origin.strip_prefix("https://"))
            .flatten();
        let Some(authority) = origin.strip_prefix("http://").or(https) else {
            return false;
        };
        let authority = authority.to_ascii_lowercase();
        // An origin is scheme, host and port: nothing else.
        let Some(name) = host_name(&authority) else {
            return false;
        };
        if self.proxy {
            // The page came through this proxy: same authority as the request.
            authority.eq_ignore_ascii_case(host.trim())
        } else {
            is_loopback_name(name)
        }
    }
}

/// `example.test:3000` → `example.test`; `[::1]:3000` → `::1`; `None` for anything
/// that is not a host with an optional port.
fn host_name(host: &str) -> Option<&str> {
    let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?,
        None => match host.find(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        },
    };
    let port_fine = port.is_empty() || port.strip_prefix(':').is_some_and(port_ok);
    let name_fine = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    (port_fine && name_fine).then_some(name)
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(proxy: bool) -> Guard {
        Guard {
            hosts: vec!["dev.example".into()],
            origins: vec!["http://tools.example:8080".into()],
            proxy,
        }
    }

    #[test]
    fn hosts() {
        let g = guard(false);
        for ok in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:1",
            "app.localhost:3000",
            "[::1]:3000",
            "127.1.2.3",
            "dev.example:3000",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:3000",
            "",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1",
            "[::1]evil.example",
            "[::1",
            "127.0.0.1:",
            "localhost:3000:1",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let g = guard(false);
        assert!(g.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:35729"));
        assert!(g.origin_allowed("http://localhost:5173", "127.0.0.1:35729"));
        assert!(g.origin_allowed("http://tools.example:8080/", "127.0.0.1:35729"));
        assert!(!g.origin_allowed("http://evil.example", "127.0.0.1:35729"));
        assert!(!g.origin_allowed("null", "127.0.0.1:35729"));
        assert!(!g.origin_allowed("", "127.0.0.1:35729"));
        assert!(!g.origin_allowed("http://evil.example/.localhost", "127.0.0.1:35729"));
        assert!(!g.origin_allowed("http://evil.example#x.localhost", "127.0.0.1:35729"));
        let p = guard(true);
        assert!(p.origin_allowed("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(p.origin_allowed("http://localhost:3000", "localhost:3000"));
        // Another local port is another origin.
        assert!(!p.origin_allowed("http://127.0.0.1:4000", "127.0.0.1:3000"));
        assert!(!p.origin_allowed("http://evil.example:3000", "127.0.0.1:3000"));
        // The proxy is http only: an https page never came from it.
        assert!(!p.origin_allowed("https://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(g.origin_allowed("https://localhost:8443", "127.0.0.1:35729"));
    }
}
