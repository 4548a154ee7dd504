//! hello-web: a small web app, built on the standard library alone, for
//! trying hotrun. Run `hotrun` in this folder, open http://127.0.0.1:3000,
//! then edit this file and save.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

const DEFAULT_PORT: u16 = 3000;

fn main() {
    let port = match std::env::var("PORT") {
        Ok(value) => match value.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("hello-web: invalid PORT {value:?}");
                std::process::exit(2);
            }
        },
        Err(_) => DEFAULT_PORT,
    };
    let addr = format!("127.0.0.1:{port}");
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("hello-web: cannot bind {addr}: {err}");
            std::process::exit(1);
        }
    };

    let started = Arc::new(format_utc(SystemTime::now()));
    println!("hello-web listening on http://{addr}");
    let _ = io::stdout().flush();

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let started = Arc::clone(&started);
                thread::spawn(move || {
                    if let Err(err) = handle(stream, &started) {
                        eprintln!("hello-web: connection error: {err}");
                    }
                });
            }
            Err(err) => eprintln!("hello-web: accept failed: {err}"),
        }
    }
}

fn handle(stream: TcpStream, started: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream);

    // Request line, e.g. "GET /health HTTP/1.1".
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        // Connected and closed without a request (a readiness probe): nothing to answer.
        return Ok(());
    }
    // Skip the remaining header lines, up to the empty line.
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }

    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");

    let (status, content_type, body) = match (method, path) {
        ("GET", "/") => ("200 OK", "text/html; charset=utf-8", page(started)),
        ("GET", "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    };

    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn page(started: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>hello from hotrun</title>
</head>
<body>
  <h1>hello from hotrun</h1>
  <p>Edit src/main.rs and save: hotrun rebuilds and swaps this app.</p>
  <p>This server started at {started}.</p>
</body>
</html>
"#
    )
}

/// Formats a time as "YYYY-MM-DD HH:MM:SS UTC" without any dependencies.
fn format_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);

    // Convert days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);

    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}
