//! Real apps as they are: apps that bind their own port, or none.

use std::time::{Duration, Instant};

use hotrun_support::http::request;
use hotrun_support::*;

/// Wait until `port` answers `/` with 200 and `body` (Python's server says HTTP/1.0).
fn wait_body(port: u16, body: &str, h: &Hotrun) {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, _, got) = request(port, "/", &[]);
            if status == 200 && String::from_utf8_lossy(&got).contains(body) {
                return;
            }
        }
        if start.elapsed() > DEADLINE {
            h.fail(&format!("port {port} never answered {body:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next `error` line of hotrun's that contains `words`.
fn said(h: &mut Hotrun, words: &str) -> String {
    let event = h.wait_for("error", |e| {
        e["message"].as_str().is_some_and(|m| m.contains(words))
    });
    event["message"].as_str().unwrap().to_string()
}

/// A Python file server on `port`, whatever `PORT` says.
fn fixed_port_app(port: u16) -> TempDir {
    let dir = command_project(&format!(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"python3 -m http.server {port} --bind 127.0.0.1\"\n"
    ));
    write(&dir.path().join("index.html"), "fixed port");
    dir
}

#[test]
fn an_app_on_its_own_port_is_found_behind_the_proxy() {
    let app_port = free_port();
    let dir = fixed_port_app(app_port);
    let proxy = free_port();
    let started = Instant::now();
    let mut h = hotrun(dir.path()).proxy(proxy).start();
    let message = said(&mut h, "listens on");
    assert!(
        message.contains(&format!("127.0.0.1:{app_port}")) && message.contains("PORT"),
        "{message}"
    );
    wait_body(proxy, "fixed port", &h);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "served after {:?}",
        started.elapsed()
    );
    // A restart finds it again at once.
    h.send("restart");
    h.wait("app_ready");
    wait_body(proxy, "fixed port", &h);
}

#[test]
fn listen_mode_on_an_app_that_binds_its_own_port_says_so() {
    let app_port = free_port();
    let dir = fixed_port_app(app_port);
    let listen = free_port();
    let started = Instant::now();
    let mut h = hotrun(dir.path())
        .args(&["--listen", &listen.to_string()])
        .start();
    let message = said(&mut h, "listens on");
    assert!(
        message.contains(&format!("127.0.0.1:{app_port} itself")),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_app_that_listens_nowhere_is_said_at_the_readiness_timeout() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\nready_timeout = \"2s\"\n",
    );
    let proxy = free_port();
    let started = Instant::now();
    let mut h = hotrun(dir.path()).proxy(proxy).start();
    let message = said(&mut h, "listens nowhere");
    assert!(message.contains("PORT"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn plain_and_json_output_say_where_to_go() {
    let dir = fixture("site");
    // JSON: a `urls` event, before the first build.
    let (h, port) = behind_proxy(dir.path());
    let urls = h
        .events_since(0)
        .into_iter()
        .find(|e| e["event"] == "urls")
        .unwrap_or_else(|| h.fail("no `urls` event"));
    assert_eq!(urls["proxy"], format!("http://127.0.0.1:{port}"), "{urls}");
    let (status, _, _) = request(port, "/", &[]);
    assert_eq!(status, 200);
    drop(h);
    // Plain: one line, with the proxy and the reload script, that can be fetched.
    let port = free_port();
    let mut h = hotrun(dir.path())
        .reload()
        .args(&["--ui", "plain", "--proxy", &port.to_string()])
        .start();
    let line = h.wait_line("the URLs", |l| l.contains("proxy http://"));
    let script = line
        .split_whitespace()
        .find(|w| w.ends_with("/__hotrun/client.js"))
        .unwrap_or_else(|| panic!("the reload script's URL: {line}"));
    assert!(
        line.contains(&format!("proxy http://127.0.0.1:{port}")),
        "{line}"
    );
    let path = script.split_once(&format!("127.0.0.1:{port}")).unwrap().1;
    let (status, _, body) = request(port, path, &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("hotrun"));
}

#[test]
fn a_missing_env_file_is_one_note_not_an_error_at_every_start() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\nenv_file = \".env\"\n",
    );
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    for _ in 0..2 {
        h.send("restart");
        h.wait("app_started");
    }
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
    let notes: Vec<_> = h
        .events_since(0)
        .into_iter()
        .filter(|e| e["event"] == "error")
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]["message"].to_string().contains("does not exist"));
}

#[test]
fn an_app_given_no_address_has_its_url_shown() {
    let app_port = free_port();
    let dir = fixed_port_app(app_port);
    let mut h = hotrun(dir.path()).start();
    let urls = h.wait("urls");
    assert_eq!(
        urls["app"],
        format!("http://127.0.0.1:{app_port}"),
        "{urls}"
    );
    wait_body(app_port, "fixed port", &h);
    // A restart on the same port says nothing new.
    h.send("restart");
    h.wait("app_started");
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
    let said = h
        .events_since(0)
        .into_iter()
        .filter(|e| e["event"] == "urls")
        .count();
    assert_eq!(said, 1);
}
