//! Blue-green swaps: a new app generation starts beside the one serving, takes the
//! traffic once it is ready, and is rolled back when it dies on start. The app here
//! takes 1.5 s to start, as real apps do (pools, migrations, templates), and can be
//! made to crash on start; behind the proxy it listens on its `PORT`, on the
//! `run.listen` socket it takes fd 3 and says `READY=1` on its `NOTIFY_SOCKET`.

use hotrun_support::http::{Hammer, Sample};
use hotrun_support::*;

/// How long the app takes to start.
const START_DELAY: &str = "1.5";

/// A request during a swap may take this long at most: well under the start-up, so no
/// request waited for it.
const SLOWEST_MS: f64 = 700.0;

const APP: &str = r#"
import http.server, os, socket, sys, time

version = open("version.txt").read().strip()
if version == "crash":
    print("app: cannot start: the config is broken", flush=True)
    sys.exit(3)
time.sleep(float(os.environ["START_DELAY"]))
extra = os.environ.get("EXTRA_PORT")
if extra:
    # A second port of its own (a metrics endpoint): two generations clash on it.
    metrics = socket.socket()
    metrics.bind(("127.0.0.1", int(extra)))
    metrics.listen()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = (version + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

if os.environ.get("LISTEN_FDS"):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket = socket.socket(fileno=3)
else:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.sendto(b"READY=1", notify)
print("app", version, "serving", flush=True)
# A graceful stop, as a real server does on SIGTERM: no new connections, the requests
# it has are answered.
import signal, threading
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.daemon_threads = False
server.serve_forever()
server.server_close()
"#;

fn slow_python_app(extra: &str) -> TempDir {
    let dir = command_project(&format!(
        "[build]\ncmd = \"true\"\n[run]\ncmd = \"python3 app.py\"\nenv = {{ START_DELAY = \"{START_DELAY}\"{extra} }}\n"
    ));
    write(&dir.path().join("app.py"), APP);
    write(&dir.path().join("version.txt"), "v1\n");
    dir
}

/// Save version `v` and wait until the hammer gets it.
fn swap_to(dir: &TempDir, hammer: &Hammer, v: &str) {
    write(&dir.path().join("version.txt"), &format!("{v}\n"));
    hammer.wait_for(v);
}

fn assert_no_failure_and_no_wait(samples: &[Sample]) {
    let failed: Vec<_> = samples.iter().filter(|s| s.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "failed requests: {:?}",
        &failed[..failed.len().min(5)]
    );
    let slowest = samples.iter().map(Sample::took_ms).fold(0.0, f64::max);
    assert!(
        slowest < SLOWEST_MS,
        "the slowest of {} requests took {slowest:.0} ms: it waited for a start-up",
        samples.len()
    );
}

#[test]
fn behind_the_proxy_a_slow_app_is_swapped_with_no_request_waiting_for_it() {
    let dir = slow_python_app("");
    let port = free_port();
    let mut h = hotrun(dir.path()).proxy(port).start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    let hammer = Hammer::start(port);
    for v in ["v2", "v3", "v4"] {
        swap_to(&dir, &hammer, v);
    }
    let samples = hammer.finish();
    assert_no_failure_and_no_wait(&samples);
    // Once a version answered, no older one ever did again.
    let order: Vec<&str> = samples
        .iter()
        .filter_map(|s| s.result.as_deref().ok())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    // Each old generation was stopped once the new one served: asked for, no rollback.
    for _ in 0..3 {
        let exited = h.wait("app_exited");
        assert_eq!(exited["requested"], true, "{exited}");
        assert_eq!(exited["rolled_back"], false, "{exited}");
    }
}

#[test]
fn a_save_that_crashes_on_start_is_rolled_back_and_the_old_app_serves_on() {
    let dir = slow_python_app("");
    let port = free_port();
    let mut h = hotrun(dir.path()).proxy(port).reload().start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    let hammer = Hammer::start(port);
    write(&dir.path().join("version.txt"), "crash\n");
    let exited = h.wait("app_exited");
    assert_eq!(exited["rolled_back"], true, "{exited}");
    assert_eq!(exited["requested"], false);
    assert!(
        exited["output"].as_array().is_some_and(|o| o
            .iter()
            .any(|l| l.as_str().unwrap().contains("config is broken"))),
        "{exited}"
    );
    // The page's tabs were told, with the app's output; the old app still answers.
    let sent = h.wait_for("reload_sent", |e| e["kind"] == "exited");
    assert_eq!(sent["kind"], "exited");
    for _ in 0..20 {
        assert_eq!(http_get(port).as_deref(), Some("v1"));
    }
    // The next good save swaps.
    swap_to(&dir, &hammer, "v2");
    let samples = hammer.finish();
    assert_no_failure_and_no_wait(&samples);
}

#[test]
fn an_app_that_clashes_with_itself_is_swapped_by_stop_then_start_from_then_on() {
    let extra = free_port();
    let dir = slow_python_app(&format!(", EXTRA_PORT = \"{extra}\""));
    let port = free_port();
    let mut h = hotrun(dir.path()).proxy(port).start();
    h.wait("app_ready");
    wait_http(port, "v1", &h);
    write(&dir.path().join("version.txt"), "v2\n");
    let said = h.wait_for("error", |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("stop-then-start"))
    });
    assert!(
        said["message"].as_str().unwrap().contains("clashed"),
        "{said}"
    );
    wait_http(port, "v2", &h);
    // The next swap goes the old way at once: no second clash.
    let from = h.cursor();
    write(&dir.path().join("version.txt"), "v3\n");
    wait_http(port, "v3", &h);
    let rolled_back = h
        .events_since(from)
        .into_iter()
        .filter(|e| e["event"] == "app_exited" && e["rolled_back"] == true)
        .count();
    assert_eq!(rolled_back, 0);
}

#[test]
fn on_the_listen_socket_an_app_that_says_ready_is_swapped_with_no_request_waiting() {
    let dir = slow_python_app("");
    let port = free_port();
    let mut h = hotrun(dir.path())
        .args(&["--listen", &format!("127.0.0.1:{port}")])
        .start();
    // It says READY=1 before this line: from then on, swaps overlap.
    h.wait_for("output", |e| {
        e["line"].as_str().is_some_and(|l| l.contains("v1 serving"))
    });
    wait_http(port, "v1", &h);
    let hammer = Hammer::start(port);
    for v in ["v2", "v3"] {
        swap_to(&dir, &hammer, v);
    }
    let samples = hammer.finish();
    assert_no_failure_and_no_wait(&samples);
}

#[test]
fn nothing_is_left_after_hotrun_is_killed_in_the_middle_of_an_overlap() {
    let dir = slow_python_app("");
    let port = free_port();
    let mut h = hotrun(dir.path()).proxy(port).start();
    h.wait("app_ready");
    write(&dir.path().join("version.txt"), "v2\n");
    // The new generation is starting beside the old one.
    h.wait("app_started");
    let apps = descendants(h.pid());
    assert!(apps.len() >= 4, "two helpers and two apps: {apps:?}");
    h.signal(9);
    for (pid, name) in apps {
        wait_gone(pid, &name, &h);
    }
}

#[test]
fn with_proxy_app_swaps_stop_then_start_and_hotrun_says_why_once() {
    let dir = slow_python_app("");
    let (port, app) = (free_port(), free_port());
    let mut h = hotrun(dir.path())
        .args(&["--ui", "plain", "--proxy", &port.to_string()])
        .args(&["--app", &app.to_string()])
        .start();
    h.wait_line("the app's start", |l| l.contains("app started"));
    let lines = h.lines();
    let said: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("proxy.app names"))
        .collect();
    assert_eq!(said.len(), 1, "{lines:#?}");
    assert!(said[0].contains("stop the old app, then start the new one"));
}
