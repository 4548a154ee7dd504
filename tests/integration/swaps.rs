//! Zero-downtime swaps: socket passing (`--listen`), readiness, and the proxy. A client
//! hammers the app across several swaps of a slow-building fixture and every request is
//! checked: none fails, and none was in flight for a whole build (an ordering of facts,
//! not a timing).

use hotrun_support::clients::{SseClient, WsClient};
use hotrun_support::http::{assert_no_failures_and_no_wait_for_a_build, ts, Hammer};
use hotrun_support::*;

/// The webapp fixture with a build script that takes 2 s.
fn slow_app() -> TempDir {
    let app = fixture("webapp");
    write(
        &app.path().join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(2)); }\n",
    );
    app
}

/// Save three new versions; wait for each to be served through `port`. Returns the
/// (build_started, build_finished) times of those builds.
fn three_swaps(h: &mut Hotrun, app: &TempDir, port: u16) -> Vec<(u64, u64)> {
    let main = app.path().join("src/main.rs");
    let mut builds = Vec::new();
    for n in 2..=4 {
        edit(&main, &format!("\"v{}\"", n - 1), &format!("\"v{n}\""));
        let started = h.wait("build_started");
        let finished = h.wait("build_finished");
        assert_eq!(finished["ok"], true, "{finished}");
        h.wait("app_ready");
        wait_http(port, &format!("v{n}"), h);
        builds.push((ts(&started), ts(&finished)));
    }
    builds
}

#[test]
fn listen_mode_never_fails_a_request_across_swaps() {
    let app = slow_app();
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--listen", &format!("127.0.0.1:{port}")])
        .start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    assert!(
        h.events_since(0)
            .iter()
            .any(|e| e["line"] == "webapp v1 listening on fd 3"),
        "the app took the socket from hotrun"
    );
    let hammer = Hammer::start(port);
    let builds = three_swaps(&mut h, &app, port);
    let samples = hammer.finish();
    assert_no_failures_and_no_wait_for_a_build(&samples, &builds);
    // The app says READY=1, so swaps overlap: the last old one stops after the new one
    // took over. Once it is gone, nothing is left unreaped.
    h.wait_for("app_exited", |e| e["requested"] == true);
    assert_no_zombies(&h);
}

#[test]
fn the_proxy_never_fails_a_request_across_swaps() {
    let app = slow_app();
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("watching");
    // The first request is held until the first build's app is ready.
    let (status, body) = raw_get(port, "/").unwrap();
    assert_eq!((status, body.trim()), (200, "v1"));
    h.wait("app_ready");
    let hammer = Hammer::start(port);
    let builds = three_swaps(&mut h, &app, port);
    let samples = hammer.finish();
    assert_no_failures_and_no_wait_for_a_build(&samples, &builds);
}

#[test]
fn direct_mode_keeps_the_old_app_answering_during_the_build() {
    let app = slow_app();
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    let hammer = Hammer::start(port);
    edit(&app.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    let started = ts(&h.wait("build_started"));
    let finished = ts(&h.wait("build_finished"));
    wait_http(port, "v2", &h);
    let samples = hammer.finish();
    let during: Vec<_> = samples
        .iter()
        .filter(|s| s.start_ms > started && s.end_ms < finished)
        .collect();
    assert!(
        during.len() > 10,
        "requests during the build: {}",
        during.len()
    );
    assert!(
        during.iter().all(|s| s.result.as_deref() == Ok("v1")),
        "the old app answered all of them"
    );
}

#[test]
fn a_failed_build_behind_the_proxy_keeps_serving_the_old_app() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    let hammer = Hammer::start(port);
    edit(
        &app.path().join("src/main.rs"),
        "const VERSION: &str = \"v1\";",
        "const VERSION: &str = \"v1\"",
    );
    assert_eq!(h.wait("build_finished")["ok"], false);
    for _ in 0..20 {
        assert_eq!(http_get(port).as_deref(), Some("v1"));
    }
    let samples = hammer.finish();
    assert!(
        samples.iter().all(|s| s.result.as_deref() == Ok("v1")),
        "{samples:?}"
    );
}

#[test]
fn after_a_crash_the_proxy_says_so_and_recovers_with_the_next_build() {
    let app = fixture("webapp");
    write(
        &app.path().join(".hotrun.toml"),
        "[proxy]\ntimeout = \"300ms\"\n",
    );
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    assert_eq!(http_get(port).as_deref(), Some("v1"));
    let _ = raw_get(port, "/exit");
    let exited = h.wait("app_exited");
    assert_eq!(exited["code"], 3, "{exited}");
    let (status, page) = raw_get(port, "/").unwrap();
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("exited with code 3"), "{page}");

    edit(&app.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    h.wait("app_ready");
    assert_eq!(http_get(port).as_deref(), Some("v2"));
}

#[test]
fn websockets_and_server_sent_events_pass_through_and_reconnect_after_a_swap() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    let mut ws = WsClient::connect(port, "/ws").unwrap();
    ws.send_text("hello").unwrap();
    assert_eq!(ws.recv_text().unwrap(), "v1:hello");
    let mut sse = SseClient::connect(port, "/sse").unwrap();
    assert_eq!(sse.next_data().unwrap(), "v1");
    assert_eq!(sse.next_data().unwrap(), "v1", "events stream, unbuffered");

    edit(&app.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    h.wait("app_ready");
    // The old app's connections end with it; clients reconnect and go on.
    while sse.next_data().is_ok() {}
    let mut sse = SseClient::connect(port, "/sse").unwrap();
    assert_eq!(sse.next_data().unwrap(), "v2");
    let _ = ws.send_text("again");
    while ws.recv_text().is_ok() {}
    let mut ws = WsClient::connect(port, "/ws").unwrap();
    ws.send_text("again").unwrap();
    assert_eq!(ws.recv_text().unwrap(), "v2:again");
}

#[test]
fn busy_ports_and_bad_addresses_are_usage_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = command_project("[run]\ncmd = \"sleep 1000\"\n");
    for (args, words) in [
        (
            vec!["--listen", port.as_str()],
            vec!["cannot listen on", "run.listen", "in use"],
        ),
        (
            vec!["--proxy", port.as_str()],
            vec!["cannot listen on", "proxy.listen"],
        ),
        (
            vec!["--listen", "nowhere"],
            vec!["--listen", "invalid address `nowhere`"],
        ),
        (vec!["--proxy", "1.2.3"], vec!["--proxy", "invalid address"]),
    ] {
        let (code, stdout, stderr) = hotrun(dir.path()).args(&args).run();
        assert_eq!(code, 2, "{args:?}: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "{args:?}: `{w}` not in {stderr}");
        }
        assert!(stdout.is_empty(), "nothing started: {stdout}");
    }
}

#[test]
fn an_app_address_that_is_not_up_yet_is_fine() {
    let app_port = free_port();
    let port = free_port();
    // The app comes up a moment after it starts; the proxy waits for it.
    let dir = command_project(&format!(
        "[run]\ncmd = 'sleep 0.5; exec python3 -m http.server {app_port} --bind 127.0.0.1'\n[proxy]\nlisten = \"{port}\"\napp = \"{app_port}\"\n"
    ));
    let mut h = hotrun(dir.path()).start();
    // Bound before anything runs: once hotrun watches, the proxy is up.
    h.wait("watching");
    let (status, _) = raw_get(port, "/").unwrap();
    assert_eq!(status, 200);
    let ready = h.wait("app_ready");
    assert!(
        ready["after_ms"].as_u64().unwrap() >= 400,
        "ready when it answered: {ready}"
    );
}

/// GET `path`; the status and the body (whatever the status).
fn raw_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response.get(9..12)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[test]
fn sockets_reach_the_app_but_never_a_build() {
    let port = free_port();
    let dir = command_project(
        "[build]\ncmd = 'ls -l /proc/self/fd/ | grep -c socket || true'\n[run]\ncmd = 'echo \"env $LISTEN_FDS $LISTEN_FDS_FIRST_FD\"; ls -l /proc/self/fd/3; exec sleep 1000'\n",
    );
    let mut h = hotrun(dir.path())
        .args(&["--listen", &port.to_string()])
        .start();
    let build = h.wait_for("output", |e| e["stream"] == "build");
    assert_eq!(build["line"], "0", "no socket in the build: {build}");
    h.wait_for("output", |e| e["line"] == "env 1 3");
    h.wait_for("output", |e| {
        e["line"].as_str().is_some_and(|l| l.contains("socket:"))
    });
}

#[test]
fn a_readiness_timeout_is_reported_not_a_hang() {
    let nowhere = free_port();
    let dir = command_project(&format!(
        "[run]\ncmd = \"sleep 1000\"\nready = \"tcp:127.0.0.1:{nowhere}\"\nready_timeout = \"300ms\"\n"
    ));
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let error = h.wait("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("run.ready_timeout"),
        "{error}"
    );
    let ready = h.wait("app_ready");
    assert!(ready["after_ms"].as_u64().unwrap() >= 300, "{ready}");
}

#[test]
fn a_request_that_crashed_the_app_is_not_sent_again() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    // The app dies on this request: the client is told, at once.
    let (status, page) = raw_get(port, "/exit").unwrap();
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("did not answer"), "{page}");
    assert_eq!(h.wait("app_exited")["code"], 3);
    edit(&app.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    h.wait("app_ready");
    let mark = h.cursor();
    assert_eq!(http_get(port).as_deref(), Some("v2"));
    assert!(
        !h.events_since(mark)
            .iter()
            .any(|e| e["event"] == "app_exited"),
        "the new app was not crashed by a resent request"
    );
}
