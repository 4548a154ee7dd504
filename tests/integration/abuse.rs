//! hotrun under abuse: odd file names, a killed helper, blocked output, floods,
//! clients that stop reading, half-sent requests, a deleted project. No crash, no
//! hang, bounded memory, nothing left running.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use hotrun_support::*;

#[test]
fn file_names_that_are_not_utf8_are_reported_not_fatal() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    // One such name is there from the start, one comes while hotrun runs.
    let old = dir.path().join(OsStr::from_bytes(b"caf\xe9.go"));
    std::fs::write(&old, "package x").unwrap();
    let mut h = hotrun(dir.path()).start();
    let app = h.wait("app_started");
    let new = dir.path().join(OsStr::from_bytes(b"na\xefve\xff.go"));
    std::fs::write(&new, "package x").unwrap();
    let change = h.wait_for("change", |e| e["paths"].to_string().contains("na"));
    assert_eq!(
        change["paths"][0].as_str().unwrap(),
        new.to_string_lossy(),
        "{change}"
    );
    let raw = data_encoding::BASE64
        .decode(change["paths_base64"][0].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(raw, new.as_os_str().as_bytes(), "{change}");
    h.wait("build_finished");
    std::fs::write(&old, "package y").unwrap();
    h.wait_for("change", |e| e["paths"].to_string().contains("caf"));
    h.wait("build_finished");
    // The app it started first was swapped, not lost: hotrun is still in charge.
    h.wait("app_started");
    assert!(!alive(app["pid"].as_u64().unwrap() as u32));
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
}

/// An app that writes as fast as it can: `yes` with a 100-byte line.
const FLOOD: &str = "[build]\ncmd = \"true\"\n[run]\ncmd = \"yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n";

/// hotrun on `dir` with its stdout going to `stdout` (not read by the test harness).
fn hotrun_to(dir: &std::path::Path, stdout: std::process::Stdio) -> std::process::Child {
    std::process::Command::new(hotrun_bin())
        .args(["--ui", "json", "--no-reload"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Resident memory of `pid`, in MB.
fn rss_mb(pid: u32) -> u64 {
    proc_field(pid, "status", "VmRSS:") / 1024
}

#[test]
fn an_output_flood_keeps_memory_bounded() {
    let dir = command_project(FLOOD);
    let mut child = hotrun_to(dir.path(), std::process::Stdio::null());
    let app = app_under(child.id(), "yes");
    let start = std::time::Instant::now();
    let mut peak = 0;
    while start.elapsed() < std::time::Duration::from_secs(5) {
        peak = peak.max(rss_mb(child.id()));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let written = proc_field(app, "io", "wchar:");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        written > 100 << 20,
        "the app wrote only {written} bytes: no flood"
    );
    assert!(
        peak < 64,
        "hotrun's RSS reached {peak} MB while the app wrote {} MB",
        written >> 20
    );
    assert_eq!(status.code(), Some(0));
    assert!(!alive(app));
}

#[test]
fn sigterm_exits_in_time_while_nobody_reads_the_output() {
    let dir = command_project(FLOOD);
    // A pipe the test holds open and never reads: hotrun's writes block.
    let mut child = hotrun_to(dir.path(), std::process::Stdio::piped());
    let _unread = child.stdout.take();
    let app = app_under(child.id(), "yes");
    // Long enough for the pipe to fill and every queue to be full.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < until {
        assert!(alive(child.id()), "hotrun died under the flood");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let asked = std::time::Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // The stop timeout (5 s), and a margin.
        if asked.elapsed() > std::time::Duration::from_secs(8) {
            let _ = child.kill();
            panic!("hotrun did not exit within the stop timeout with its output blocked");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!alive(app), "the app outlived hotrun");
}

/// The parent pid of `pid`.
fn parent(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_killed_helper_takes_its_app_and_daemons_along() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sh app.sh\"\n");
    // An app that starts a daemon in a session of its own, holding the output pipes.
    write(
        &dir.path().join("app.sh"),
        "setsid sh -c 'echo daemon $$; exec sleep 1000' &\necho app $$\nexec sleep 1000\n",
    );
    let mut h = hotrun(dir.path()).start();
    let app = h.wait("app_started")["pid"].as_u64().unwrap() as u32;
    let daemon = pid_from_output(&mut h, "daemon ");
    let helper = parent(app);
    assert!(
        std::fs::read(format!("/proc/{helper}/cmdline"))
            .unwrap()
            .split(|b| *b == 0)
            .any(|arg| arg == b"__supervise"),
        "the app's parent is the helper, by name"
    );
    // SAFETY: kill(2) on a process of this test.
    unsafe { libc::kill(helper as i32, libc::SIGKILL) };
    let exited = h.wait("app_exited");
    assert_eq!(exited["requested"], false, "{exited}");
    assert_eq!(exited["signal"], 9, "{exited}");
    assert!(
        exited["output"].to_string().contains("helper"),
        "the cause is said: {exited}"
    );
    wait_gone(app, "the app", &h);
    wait_gone(daemon, "the app's daemon", &h);
    // Then as after any exit: `restart` starts a new app, and so does a save.
    h.send("restart");
    let again = h.wait("app_started")["pid"].as_u64().unwrap() as u32;
    assert!(alive(again));
    write(&dir.path().join("main.go"), "package main");
    h.wait("build_finished");
    let third = h.wait("app_started")["pid"].as_u64().unwrap() as u32;
    wait_gone(again, "the swapped app", &h);
    // And a quit is prompt, with nothing left behind.
    let asked = std::time::Instant::now();
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "quit took {:?}",
        asked.elapsed()
    );
    wait_gone(third, "the last app", &h);
}

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A websocket upgrade to hotrun's reload socket, sent and never read again.
fn stalled_tab(port: u16) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /__hotrun/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    s
}

#[test]
fn tabs_that_stop_reading_keep_memory_bounded() {
    // Each build fails with 2 MB of errors (200 lines of 10 KB, each a location).
    let dir = command_project("[build]\ncmd = \"sh build.sh\"\n[run]\ncmd = \"sleep 1000\"\n");
    write(
        &dir.path().join("build.sh"),
        "i=0; while [ $i -lt 200 ]; do i=$((i+1)); printf 'main.go:%d:1: error: ' $i; head -c 10000 /dev/zero | tr '\\0' e; echo; done; exit 1\n",
    );
    let port = free_port();
    let mut h = hotrun(dir.path()).reload().proxy(port).start();
    h.wait("build_finished");
    let tabs: Vec<_> = (0..20).map(|_| stalled_tab(port)).collect();
    let mut live = hotrun_support::reload::connect(port);
    let mut peak = 0;
    for _ in 0..25 {
        h.send("rebuild");
        h.wait("build_finished");
        peak = peak.max(rss_mb(h.pid()));
    }
    assert!(
        peak < 64,
        "hotrun's RSS reached {peak} MB with 20 tabs not reading"
    );
    // A tab that reads is still told, however far behind it was let fall.
    h.send("rebuild");
    hotrun_support::reload::next(&mut live, "error");
    drop(tabs);
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
}

#[test]
fn half_sent_heads_and_idle_connections_time_out_but_websockets_stay() {
    use std::io::{Read, Write};
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    let port = free_port();
    let mut h = hotrun(dir.path()).reload().proxy(port).start();
    h.wait("app_started");
    let mut ws = hotrun_support::reload::connect(port);
    hotrun_support::reload::next(&mut ws, "hello");
    let before = fds(h.pid());
    // More connections than the cap, each with a request head that never ends.
    let mut half: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    let capped = h.wait("error");
    assert!(
        capped["message"]
            .as_str()
            .unwrap()
            .contains("256 connections"),
        "{capped}"
    );
    // An answered request on a kept-alive connection, then silence.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let asked = std::time::Instant::now();
    idle.write_all(b"GET /__hotrun/client.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // Every connection is closed by hotrun in time: reads end.
    for s in half.iter_mut().chain(std::iter::once(&mut idle)) {
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut rest = Vec::new();
        let ended = s.read_to_end(&mut rest);
        assert!(
            ended.is_ok() || asked.elapsed() < std::time::Duration::from_secs(20),
            "a connection stayed open: {ended:?}"
        );
    }
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(15),
        "the idle and half-sent connections took {:?} to be closed",
        asked.elapsed()
    );
    drop(half);
    let start = std::time::Instant::now();
    while fds(h.pid()) > before + 2 {
        assert!(
            start.elapsed() < DEADLINE,
            "hotrun holds {} fds, {before} before",
            fds(h.pid())
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The websocket was silent all that while, longer than any head timeout, and is
    // still open.
    h.send("rebuild");
    hotrun_support::reload::next(&mut ws, "building");
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
}

#[test]
fn a_removed_or_renamed_project_directory_is_one_clear_error_and_exit_1() {
    for rename in [false, true] {
        let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
        write(&dir.path().join("src/main.go"), "package main");
        let mut h = hotrun(dir.path()).start();
        let app = h.wait("app_started")["pid"].as_u64().unwrap() as u32;
        let moved = dir.path().with_extension("moved");
        if rename {
            std::fs::rename(dir.path(), &moved).unwrap();
        } else {
            std::fs::remove_dir_all(dir.path()).unwrap();
        }
        let error = h.wait_for("error", |e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("project directory"))
        });
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("removed or renamed"),
            "{error}"
        );
        assert_eq!(h.wait_exit(), 1);
        assert!(!alive(app), "the app outlived hotrun");
        let _ = std::fs::remove_dir_all(&moved);
    }
}

#[test]
fn a_non_loopback_address_is_served_with_one_warning() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    let port = free_port();
    let mut h = hotrun(dir.path())
        .args(&["--proxy", &format!("0.0.0.0:{port}")])
        .start();
    let warning = h.wait("error");
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains("proxy.listen") && message.contains("not a loopback address"),
        "{warning}"
    );
    h.wait("app_started");
    let warnings = h
        .events_since(0)
        .iter()
        .filter(|e| e["message"].to_string().contains("loopback"))
        .count();
    assert_eq!(warnings, 1);
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
}

/// A raw request to `port`: the status code of its answer.
fn status_of(port: u16, request: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn hosts_targets_and_origins_are_checked_as_one() {
    let (_dir, _h, port) = site_behind_proxy();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let origin = format!("Origin: http://127.0.0.1:{port}\r\n");
    for (what, request, status) in [
        (
            "a proper upgrade",
            format!("GET /__hotrun/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{origin}{upgrade}\r\n"),
            101,
        ),
        (
            "two Host headers",
            format!("GET /__hotrun/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n{origin}{upgrade}\r\n"),
            400,
        ),
        (
            "an absolute-form target naming another host",
            format!("GET http://evil.example/__hotrun/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{origin}{upgrade}\r\n"),
            403,
        ),
        (
            "an https Origin on the http proxy",
            format!("GET /__hotrun/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://127.0.0.1:{port}\r\n{upgrade}\r\n"),
            403,
        ),
        (
            "CONNECT",
            "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_string(),
            400,
        ),
        (
            "an absolute-form target for the app",
            format!("GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
            200,
        ),
    ] {
        assert_eq!(status_of(port, &request), status, "{what}");
    }
}

#[test]
fn a_branch_switch_is_one_change_event_per_kind() {
    let dir = command_project(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n[watch]\ninclude = [\"**/*.go\"]\n",
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    for i in 0..150 {
        write(
            &dir.path().join(format!("src/m{i}.go")),
            "package main // one",
        );
        write(&dir.path().join(format!("docs/d{i}.md")), "one");
    }
    git(&["add", "-A"]);
    git(&["commit", "-qm", "one"]);
    git(&["checkout", "-qb", "two"]);
    for i in 0..150 {
        write(
            &dir.path().join(format!("src/m{i}.go")),
            "package main // two",
        );
        write(&dir.path().join(format!("docs/d{i}.md")), "two");
    }
    git(&["commit", "-qam", "two"]);
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let from = h.cursor();
    git(&["checkout", "-q", "main"]);
    let started = h.wait("build_started");
    assert_eq!(started["files"].as_array().unwrap().len(), 150);
    h.wait("build_finished");
    // The docs are reported too, once the burst is over (with the build, or after).
    let start = std::time::Instant::now();
    let changes = loop {
        let changes: Vec<_> = h
            .events_since(from)
            .into_iter()
            .filter(|e| e["event"] == "change")
            .collect();
        if changes.iter().any(|e| e["kind"] == "other") || start.elapsed() > DEADLINE {
            break changes;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let kinds: Vec<(&str, u64)> = changes
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("build", 150), ("other", 150)]);
}
