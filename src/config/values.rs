//! The values config keys and flags take, parsed from text: durations, addresses,
//! signals, readiness checks. Pure; each error says what was wrong with the text.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::config::file::SignalValue;

/// `30ms`, `1.5s`, `2m`, `1h`, or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (write it like 30ms, 5s or 2m)"))?;
    let scale = match unit.trim() {
        "" | "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit `{other}` in `{text}` (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("duration `{text}` is too long"))
}

/// A duration written so that it reads back exactly: `2s`, `1234ms`, `1500us`.
pub fn exact_duration(d: Duration) -> String {
    if d.subsec_nanos() % 1_000_000 != 0 {
        format!("{}us", d.as_micros())
    } else if d.subsec_millis() != 0 || d.is_zero() {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// `3000`, `:3000`, `127.0.0.1:3000`, `localhost:3000` (a bare port means 127.0.0.1).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let bad = || {
        format!("invalid address `{text}` (write it like 3000, :3000, 127.0.0.1:3000 or localhost:3000)")
    };
    if let Ok(port) = t.trim_start_matches(':').parse::<u16>() {
        if !t.contains('.') {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host == "localhost" {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(bad)
}

/// `tcp:ADDR` or `http:URL`.
pub fn parse_ready(text: &str) -> Result<Ready, String> {
    let t = text.trim();
    if let Some(addr) = t.strip_prefix("tcp:") {
        return parse_address(addr).map(Ready::Tcp);
    }
    if let Some(url) = t.strip_prefix("http:") {
        let url = if url.starts_with("//") {
            format!("http:{url}")
        } else {
            url.to_string()
        };
        if url.starts_with("http://") && url.len() > "http://".len() {
            return Ok(Ready::Http(url));
        }
    }
    Err(format!("invalid readiness probe `{text}` (write tcp:127.0.0.1:3000 or http:http://127.0.0.1:3000/health)"))
}

/// `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(value: &SignalValue) -> Result<i32, String> {
    use nix::sys::signal::Signal;
    use std::str::FromStr;
    let signal = match value {
        SignalValue::Number(n) => i32::try_from(*n)
            .ok()
            .and_then(|n| Signal::try_from(n).ok()),
        SignalValue::Name(name) => {
            let upper = name.trim().to_ascii_uppercase();
            let full = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&full).ok().or_else(|| {
                name.trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok())
            })
        }
    };
    match signal {
        Some(s) if s != Signal::SIGSTOP => Ok(s as i32),
        _ => Err(format!(
            "invalid stop signal `{}` (use a name like SIGTERM, TERM or SIGINT, or a number)",
            match value {
                SignalValue::Number(n) => n.to_string(),
                SignalValue::Name(s) => s.clone(),
            }
        )),
    }
}

/// How to tell the app is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    Tcp(SocketAddr),
    Http(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_durations_read_back() {
        for d in ["30ms", "1234ms", "5s", "1500us", "0ms"] {
            let parsed = parse_duration(d).unwrap();
            assert_eq!(exact_duration(parsed), d);
            assert_eq!(parse_duration(&exact_duration(parsed)).unwrap(), parsed);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30ms").unwrap(), Duration::from_millis(30));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_millis(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        // Longer than a Duration holds: an error, not a panic.
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("18446744073709551616s").is_err());
    }

    #[test]
    fn addresses_in_every_form() {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        for text in ["3000", ":3000", "127.0.0.1:3000", "localhost:3000"] {
            assert_eq!(parse_address(text).unwrap(), local(3000), "{text}");
        }
        assert_eq!(
            parse_address("0.0.0.0:80").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 80))
        );
        assert!(parse_address("nope").is_err());
        assert!(parse_address("localhost:99999").is_err());
        assert_eq!(parse_ready("tcp:3000").unwrap(), Ready::Tcp(local(3000)));
        assert!(parse_ready("http:http://127.0.0.1:3000/health").is_ok());
        assert!(parse_ready("ftp:x").is_err());
    }

    #[test]
    fn signals_by_name_or_number() {
        for v in [
            SignalValue::Name("SIGTERM".into()),
            SignalValue::Name("term".into()),
            SignalValue::Number(15),
            SignalValue::Name("15".into()),
        ] {
            assert_eq!(parse_signal(&v).unwrap(), libc::SIGTERM);
        }
        assert!(parse_signal(&SignalValue::Name("SIGNOPE".into())).is_err());
        assert!(parse_signal(&SignalValue::Number(999)).is_err());
    }
}
