//! Browser reload without a browser: the websocket's security checks, the messages a
//! tab receives for each kind of change, the script injection through the proxy, and
//! the reload server on its own port. The client script itself is tested in Chromium
//! (`live.rs`).

use hotrun_support::clients::WsClient;
use hotrun_support::http::{header, request};
use hotrun_support::reload::{connect, next};
use hotrun_support::*;

/// How the injected tag starts; it ends with the id of the app that served the page.
const SCRIPT: &str = "<script src=\"/__hotrun/client.js\" data-hotrun=\"";

/// Whether the injected tag stands right before `place`.
fn injected_before(page: &str, place: &str) -> bool {
    page.find(SCRIPT).is_some_and(|start| {
        let rest = &page[start + SCRIPT.len()..];
        rest.find("\"></script>")
            .is_some_and(|end| rest[end + 11..].starts_with(place))
    })
}

#[test]
fn the_websocket_refuses_foreign_hosts_and_origins() {
    let (_dir, _h, port) = site_behind_proxy();
    let addr = format!("127.0.0.1:{port}");
    let refused =
        |headers: &[(&str, &str)]| match WsClient::connect_with(&addr, "/__hotrun/ws", headers)
            .unwrap()
        {
            Ok(_) => panic!("upgrade with {headers:?} was accepted"),
            Err(status) => status,
        };
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(refused(&[("Origin", "http://evil.example")]), 403);
    assert_eq!(
        refused(&[("Origin", own.as_str()), ("Host", "evil.example")]),
        403
    );
    // Another local port is another origin.
    assert_eq!(refused(&[("Origin", "http://127.0.0.1:1")]), 403);
    assert_eq!(refused(&[("Origin", "")]), 403);
    // The page's own origin is let in and greeted with the current state.
    let mut ws = connect(port);
    let hello = next(&mut ws, "hello");
    assert_eq!(hello["state"], "running");
    assert!(hello["build_id"].as_str().is_some_and(|id| !id.is_empty()));
    // No CORS headers, and the script is served.
    let (status, head, body) = request(port, "/__hotrun/client.js", &[]);
    assert_eq!(status, 200);
    assert!(!head.to_ascii_lowercase().contains("access-control-"));
    assert!(String::from_utf8_lossy(&body).contains("__hotrun"));
    let (status, _, _) = request(port, "/__hotrun/client.js", &[("Host", "evil.example")]);
    assert_eq!(status, 403);
}

#[test]
fn each_change_sends_its_message() {
    let (dir, mut h, port) = site_behind_proxy();
    let mut ws = connect(port);
    let first = next(&mut ws, "hello");

    // A stylesheet: swapped in place, no build.
    let from = h.cursor();
    edit(
        &dir.path().join("static/theme.css"),
        "rgb(0, 0, 128)",
        "rgb(0, 128, 0)",
    );
    assert_eq!(next(&mut ws, "css")["path"], "static/theme.css");
    h.wait_for("change", |e| e["kind"] == "css");
    h.wait_for("reload_sent", |e| e["kind"] == "css" && e["clients"] == 1);

    // An asset (a template read at run time): reload, no build.
    edit(
        &dir.path().join("templates/index.html"),
        "template one",
        "template two",
    );
    assert_eq!(next(&mut ws, "reload")["path"], "templates/index.html");
    h.wait_for("reload_sent", |e| e["kind"] == "reload");
    assert!(
        h.events_since(from)
            .iter()
            .all(|e| e["event"] != "build_started"),
        "a stylesheet or asset change started a build"
    );

    // Code: building, then compiled once the new app answers, with a new id.
    edit(&dir.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    let building = next(&mut ws, "building");
    assert_eq!(building["files"], serde_json::json!(["src/main.rs"]));
    let compiled = next(&mut ws, "compiled");
    assert_ne!(compiled["build_id"], first["build_id"]);
    h.wait("app_ready");
    h.wait_for("reload_sent", |e| e["kind"] == "compiled");

    // A compile error: the diagnostics, with the file and line.
    edit(
        &dir.path().join("src/main.rs"),
        "fn main() {",
        "fn main() {\n    let x: u32 = \"no\";",
    );
    let error = next(&mut ws, "error");
    let diagnostic = &error["diagnostics"][0];
    assert_eq!(diagnostic["file"], "src/main.rs");
    assert!(diagnostic["line"].as_u64().is_some());
    assert!(diagnostic["rendered"]
        .as_str()
        .unwrap()
        .contains("mismatched types"));
    // The same build id: the app that serves did not change.
    assert_eq!(error["build_id"], compiled["build_id"]);
    let late = connect(port);
    let mut late = late;
    let hello = next(&mut late, "hello");
    assert_eq!(hello["state"], "failed");
    assert_eq!(hello["diagnostics"][0]["file"], "src/main.rs");

    // Fixed: a new app, a new id.
    edit(
        &dir.path().join("src/main.rs"),
        "fn main() {\n    let x: u32 = \"no\";",
        "fn main() {",
    );
    let fixed = next(&mut ws, "compiled");
    assert_ne!(fixed["build_id"], compiled["build_id"]);
    // A build that changes nothing (the `rebuild` command): `ok`, same id.
    h.send("rebuild");
    let ok = next(&mut ws, "ok");
    assert_eq!(ok["build_id"], fixed["build_id"]);

    // The app dies by itself.
    let _ = request(port, "/exit", &[]);
    let exited = next(&mut ws, "exited");
    assert_eq!(exited["code"], 3);
    assert_eq!(next(&mut late, "exited")["code"], 3);
}

#[test]
fn injection_through_the_proxy_is_once_streamed_and_leaves_fragments_alone() {
    let (_dir, _h, port) = site_behind_proxy();
    let (status, head, body) = request(port, "/", &[("Accept", "text/html")]);
    assert_eq!(status, 200);
    let page = String::from_utf8(body).unwrap();
    assert_eq!(page.matches(SCRIPT).count(), 1, "{page}");
    assert!(injected_before(&page, "</head>"), "{page}");
    // The tag names the app that served the page, as the hub does.
    let start = page.find(SCRIPT).unwrap() + SCRIPT.len();
    let id = &page[start..start + page[start..].find('"').unwrap()];
    assert_eq!(next(&mut connect(port), "hello")["build_id"], id);
    assert_eq!(
        header(&head, "content-length").map(|l| l.parse::<usize>().unwrap()),
        Some(page.len())
    );
    // Chunked: `</head>` arrives split across chunks, and still matches.
    let (_, _, body) = request(port, "/chunked", &[("Accept", "text/html")]);
    let page = String::from_utf8(body).unwrap();
    assert!(injected_before(&page, "</head>"), "{page}");
    // A fragment is no document.
    let (_, head, body) = request(port, "/fragment", &[("HX-Request", "true")]);
    assert_eq!(body, b"<li>fragment</li>");
    assert_eq!(header(&head, "content-length"), Some("17"));
    // The page's CSP nonce goes on the script.
    let (_, _, body) = request(port, "/csp", &[("Sec-Fetch-Dest", "document")]);
    assert!(String::from_utf8_lossy(&body)
        .contains("<script src=\"/__hotrun/client.js\" nonce=\"n0nce42\" data-hotrun=\""));
    // A client that does not ask for a page (curl, the app's own tests) gets none.
    let (_, _, body) = request(port, "/csp", &[]);
    assert!(!String::from_utf8_lossy(&body).contains("/__hotrun/client.js"));
    // Not HTML: untouched.
    let (_, _, body) = request(port, "/static/theme.css", &[]);
    assert!(!String::from_utf8_lossy(&body).contains("hotrun"));
}

#[test]
fn compressed_documents_are_asked_for_uncompressed_and_decompressed_if_sent_anyway() {
    let app_port = free_port();
    let port = free_port();
    let dir = command_project(&format!(
        "[build]\ncmd = 'true'\n[run]\ncmd = 'exec python3 server.py'\n[proxy]\nlisten = \"{port}\"\napp = \"{app_port}\"\n"
    ));
    write(
        &dir.path().join("server.py"),
        &format!(
            r#"import gzip, http.server
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        page = b"<!doctype html><html><head><title>gz</title></head><body>gzip page</body></html>"
        body = gzip.compress(page)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Accept-Encoding", self.headers.get("Accept-Encoding", "-"))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", {app_port}), Handler).serve_forever()
"#
        ),
    );
    let mut h = hotrun(dir.path()).reload().start();
    h.wait("app_ready");
    let document = [
        ("Accept", "text/html,application/xhtml+xml"),
        ("Sec-Fetch-Dest", "document"),
        ("Accept-Encoding", "gzip, br"),
    ];
    let (status, head, body) = request(port, "/", &document);
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "x-seen-accept-encoding"), Some("identity"));
    assert_eq!(header(&head, "content-encoding"), None);
    let page = String::from_utf8(body).expect("decompressed");
    assert!(
        page.starts_with(&format!(
            "<!doctype html><html><head><title>gz</title>{SCRIPT}"
        )) && injected_before(&page, "</head><body>gzip page</body></html>"),
        "{page}"
    );
    assert_eq!(
        header(&head, "content-length"),
        Some(page.len().to_string().as_str())
    );
    // Other requests keep their Accept-Encoding.
    let (_, head, _) = request(port, "/data", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&head, "x-seen-accept-encoding"), Some("gzip"));
}

#[test]
fn without_the_proxy_reload_has_its_own_port_and_a_second_hotrun_takes_the_next() {
    // Two free ports in a row: the second hotrun takes the next one.
    let reload_port = loop {
        let port = free_port();
        if std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    let app_port = free_port();
    let config = format!(
        "[build]\ncmd = 'true'\n[run]\ncmd = 'sleep 600'\n[reload]\nlisten = \"{reload_port}\"\n"
    );
    let one = command_project(&config);
    let mut first = hotrun(one.path()).reload().start();
    first.wait("app_started");
    let (status, head, _) = request(reload_port, "/__hotrun/client.js", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "server"), Some("hotrun"));
    // A page of the app's origin may connect.
    let origin = format!("http://localhost:{app_port}");
    let ws = WsClient::connect_with(
        &format!("127.0.0.1:{reload_port}"),
        "/__hotrun/ws",
        &[("Origin", origin.as_str())],
    )
    .unwrap();
    assert!(ws.is_ok(), "a loopback origin was refused");
    let refused = WsClient::connect_with(
        &format!("127.0.0.1:{reload_port}"),
        "/__hotrun/ws",
        &[("Origin", "http://evil.example")],
    )
    .unwrap();
    assert_eq!(refused.err(), Some(403));

    let two = command_project(&config);
    let mut second = hotrun(two.path()).reload().start();
    second.wait("app_started");
    let next_port = reload_port + 1;
    let (status, head, _) = request(next_port, "/__hotrun/client.js", &[]);
    assert_eq!((status, header(&head, "server")), (200, Some("hotrun")));

    // Anything else on the port is an error before anything starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let three = command_project(&format!(
        "[build]\ncmd = 'true'\n[run]\ncmd = 'sleep 600'\n[reload]\nlisten = \"{busy}\"\n"
    ));
    let accepting = std::thread::spawn(move || {
        // Answer nothing: not a hotrun.
        let _ = taken.accept();
    });
    let (code, _, stderr) = hotrun(three.path()).reload().run();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("reload.listen"), "{stderr}");
    drop(accepting);
}

#[test]
fn with_no_reload_the_proxy_injects_nothing_and_serves_no_script() {
    let dir = fixture("site");
    let port = free_port();
    // The harness passes --no-reload unless a test asks for reload.
    let mut h = hotrun(dir.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    let (status, _, body) = request(port, "/", &[("Accept", "text/html")]);
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&body).contains("__hotrun"));
    // `/__hotrun/` paths are the app's then: the site answers 404.
    let (status, head, _) = request(port, "/__hotrun/client.js", &[]);
    assert_eq!((status, header(&head, "server")), (404, None), "{head}");
    edit(
        &dir.path().join("static/theme.css"),
        "rgb(0, 0, 128)",
        "rgb(0, 128, 0)",
    );
    h.wait_for("change", |e| e["kind"] == "css");
    // The sentinel: a build after the stylesheet; nothing was sent to a browser.
    h.send("rebuild");
    h.wait("build_finished");
    assert!(h
        .events_since(0)
        .iter()
        .all(|e| e["event"] != "reload_sent"));
}
