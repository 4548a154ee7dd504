//! The page always shows what is on disk, exactly once — on an app that serves the way
//! real servers do (`tests/fixtures/pysite`: Python's file server with `Last-Modified`
//! and `304`s, a template parsed once at start, a page without document tags, a crash
//! on start), in headless Chromium, through the proxy and with a hand-written script
//! tag. Files get dates in the past where a real save would land in the same second
//! (`Last-Modified` cannot tell such saves apart) or leave the browser a heuristic
//! freshness to reuse an old copy by.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use hotrun_support::browser::{Chrome, Page};
use hotrun_support::http::{header, request, request_as};
use hotrun_support::saves::{all_saves, save, Save};
use hotrun_support::*;

const T: Duration = DEADLINE;

/// The window in which a reload loop would show (it reloaded ~10 times a second).
const LOOP_WINDOW: Duration = Duration::from_secs(4);

fn pysite_behind_proxy() -> (TempDir, Hotrun, u16) {
    let dir = fixture("pysite");
    let (h, port) = behind_proxy(dir.path());
    (dir, h, port)
}

fn connected(page: &mut Page) {
    page.wait_for(
        "the reload client to connect",
        "window.__hotrun && window.__hotrun.connected",
        T,
    );
}

fn text_of(page: &mut Page, id: &str, text: &str) {
    page.wait_for(
        &format!("#{id} to read {text:?}"),
        &format!("document.getElementById('{id}')?.textContent === '{text}'"),
        T,
    );
}

/// Give `path` a fixed date long past: two saves then share their `Last-Modified`,
/// and a browser may think its copy fresh for weeks.
fn date_in_the_past(path: &Path) {
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(past)
        .unwrap();
}

/// In place, then dated like the save before it.
fn save_same_second(path: &Path, from: &str, to: &str) {
    edit(path, from, to);
    date_in_the_past(path);
}

fn overlay_text(page: &mut Page) -> Option<String> {
    page.eval(
        "(() => { const o = document.querySelector('hotrun-overlay'); \
         return o && o.shadowRoot ? o.shadowRoot.textContent : null })()",
    )
    .as_str()
    .map(str::to_string)
}

fn overlay_shows(page: &mut Page, text: &str) {
    page.wait_for(
        &format!("{text:?} in the overlay"),
        &format!(
            "(() => {{ const o = document.querySelector('hotrun-overlay'); \
             return !!o && o.shadowRoot.textContent.includes({text:?}) }})()"
        ),
        T,
    );
}

/// A page request while no app answers and none is coming: the 502 page, in well under
/// a second. Its body.
fn unavailable_at_once(port: u16) -> String {
    let asked = Instant::now();
    let (status, _, body) = request(port, "/", &[("Sec-Fetch-Dest", "document")]);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "the 502 page took {took:?}");
    assert_eq!(status, 502);
    String::from_utf8_lossy(&body).into_owned()
}

fn count(h: &Hotrun, from: usize, pred: impl Fn(&Value) -> bool) -> usize {
    h.events_since(from).iter().filter(|e| pred(e)).count()
}

#[test]
fn two_saves_of_a_page_in_the_same_second_both_show() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, _h, port) = pysite_behind_proxy();
    let page_file = dir.path().join("static/page.html");
    date_in_the_past(&page_file);
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/static/page.html"));
    connected(&mut page);
    save_same_second(&page_file, "static one", "static two");
    text_of(&mut page, "note", "static two");
    connected(&mut page);
    save_same_second(&page_file, "static two", "static three");
    text_of(&mut page, "note", "static three");
    assert_eq!(page.loads(), 3, "one reload per save");
}

#[test]
fn an_edited_script_runs_its_new_code_after_the_reload() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, mut h, port) = pysite_behind_proxy();
    let script = dir.path().join("static/app.js");
    date_in_the_past(&script);
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/static/page.html"));
    connected(&mut page);
    assert_eq!(page.eval("window.appVersion"), json!(1));
    // Unchanged, it may be a cheap 304 — and is, once the browser asks again.
    let from = h.cursor();
    save_same_second(&script, "appVersion = 1", "appVersion = 2");
    page.wait_for("the new script to run", "window.appVersion === 2", T);
    connected(&mut page);
    save_same_second(&script, "appVersion = 2", "appVersion = 3");
    page.wait_for("the newer script to run", "window.appVersion === 3", T);
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 0);

    // Through the proxy, an answer is always revalidated, and an unchanged file may
    // still be a 304: the browser's own validator from this epoch goes to the app.
    let (status, head, _) = request(port, "/static/app.js", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    let etag = header(&head, "etag").expect("a validator").to_string();
    let (status, _, _) = request(
        port,
        "/static/app.js",
        &[
            ("If-None-Match", etag.as_str()),
            ("If-Modified-Since", header(&head, "last-modified").unwrap()),
        ],
    );
    assert_eq!(status, 304, "an unchanged file is a 304");
    // After any change hotrun saw, the same validator gets the file anew.
    write(&dir.path().join("static/other.txt"), "a change");
    h.wait_for("change", |e| {
        e["paths"][0].as_str().unwrap().ends_with("other.txt")
    });
    let (status, _, body) = request(
        port,
        "/static/app.js",
        &[
            ("If-None-Match", etag.as_str()),
            ("If-Modified-Since", header(&head, "last-modified").unwrap()),
        ],
    );
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("appVersion = 3"));
}

#[test]
fn one_code_save_is_exactly_one_page_load() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, h, port) = pysite_behind_proxy();
    // `/` answers `If-Modified-Since` with 304, like tower-http's ServeDir.
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    let from = h.cursor();
    edit(
        &dir.path().join("app.py"),
        "VERSION = \"v1\"",
        "VERSION = \"v2\"",
    );
    text_of(&mut page, "version", "v2");
    // A reload loop would show here: count the loads for a while.
    std::thread::sleep(LOOP_WINDOW);
    assert_eq!(page.loads(), 2, "one save, one reload");
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 1);
    // The page with the script is never stored.
    let (_, head, _) = request(port, "/", &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert_eq!(header(&head, "etag"), None);
    assert_eq!(header(&head, "last-modified"), None);
}

#[test]
fn every_save_style_of_a_stylesheet_swaps_it_without_a_reload() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, h, port) = pysite_behind_proxy();
    let css = dir.path().join("static/site.css");
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/static/page.html"));
    connected(&mut page);
    page.eval("window.marker = 1");
    let from = h.cursor();
    for (n, how) in all_saves().into_iter().enumerate() {
        let colour = format!("rgb({}, 2, 3)", n + 10);
        save(
            how,
            &css,
            &format!("body {{ background-color: {colour}; }}\n"),
        );
        page.wait_for(
            &format!("the stylesheet saved by {how:?}"),
            &format!("getComputedStyle(document.body).backgroundColor === '{colour}'"),
            T,
        );
    }
    assert_eq!(
        page.eval("window.marker"),
        json!(1),
        "the page never reloaded"
    );
    assert_eq!(page.loads(), 1);
    // (The first app's `compiled` may still go out to no tab after `app_ready`.)
    let reloads = count(&h, from, |e| {
        e["event"] == "reload_sent" && e["kind"] == "reload"
    });
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 0);
    assert_eq!(reloads, 0, "{:#?}", h.events_since(from));
    assert_eq!(
        count(&h, from, |e| e["event"] == "change" && e["kind"] != "css"),
        0,
        "{:#?}",
        h.events_since(from)
    );
}

#[test]
fn a_template_read_at_start_shows_its_edit() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, mut h, port) = pysite_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    let from = h.cursor();
    edit(
        &dir.path().join("templates/page.html"),
        "template one",
        "template two",
    );
    h.wait_for("change", |e| e["kind"] == "restart");
    text_of(&mut page, "note", "template two");
    assert_eq!(count(&h, from, |e| e["event"] == "build_started"), 0);
    assert_eq!(count(&h, from, |e| e["event"] == "app_started"), 1);
}

#[test]
fn a_page_without_document_tags_gets_the_script_in_a_tab_but_not_in_a_fetch() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (_dir, _h, port) = pysite_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/hello"));
    connected(&mut page);
    assert_eq!(
        page.wait_for(
            "a fetch of the same page",
            "window.__fetched || (fetch('/hello').then(r => r.text()).then(t => window.__fetched = t), false)",
            T,
        ),
        json!("<h1 id=\"hello\">Hello</h1>")
    );

    // Without a browser: by what the request says it is.
    let body = |headers: &[(&str, &str)]| {
        let (status, _, body) = request(port, "/hello", headers);
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    };
    let tagged = |b: &str| b.contains("/__hotrun/client.js");
    assert!(tagged(&body(&[("Sec-Fetch-Dest", "document")])));
    assert!(tagged(&body(&[("Sec-Fetch-Mode", "navigate")])));
    assert!(!tagged(&body(&[("Sec-Fetch-Dest", "empty")])));
    assert!(!tagged(&body(&[
        ("Sec-Fetch-Dest", "document"),
        ("HX-Request", "true")
    ])));
    assert!(!tagged(&body(&[
        ("Sec-Fetch-Dest", "document"),
        ("Turbo-Frame", "main")
    ])));
    assert!(!tagged(&body(&[])), "no document tags, no navigation");

    // HEAD reports the length GET sends.
    let navigation = [("Sec-Fetch-Dest", "document")];
    let get = body(&navigation);
    let head = head_request(port, "/hello", &navigation);
    assert_eq!(
        header(&head, "content-length"),
        Some(get.len().to_string().as_str()),
        "{head}"
    );
}

#[test]
fn a_page_with_a_stale_build_id_reloads_once_then_says_so() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (_dir, _h, port) = pysite_behind_proxy();
    // As an old copy kept by something between the browser and hotrun would be.
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/stale"));
    page.wait_for(
        "the stale-page badge",
        "(() => { const b = document.querySelector('hotrun-badge'); \
         return !!b && b.shadowRoot.textContent.includes('stale page') })()",
        T,
    );
    std::thread::sleep(LOOP_WINDOW);
    assert_eq!(page.loads(), 2, "one reload, then no more");
    assert!(page
        .console()
        .iter()
        .any(|l| l.contains("still an old copy after a reload")));
}

/// A HEAD request; its response head.
fn head_request(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let (_, head, body) = request_as("HEAD", port, path, headers);
    assert!(body.is_empty(), "a HEAD answer has no body: {head:?}");
    head
}

#[test]
fn a_crash_on_start_is_rolled_back_with_its_output_over_the_page() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, mut h, port) = pysite_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    let template = dir.path().join("templates/page.html");
    edit(&template, "template one", "template {% broken %}");
    let exited = h.wait_for("app_exited", |e| e["requested"] == false);
    let why = "TemplateSyntaxError: unknown tag 'broken' at templates/page.html:10";
    assert!(
        exited["output"].to_string().contains(why),
        "app_exited carries the output: {exited}"
    );
    assert_eq!(exited["rolled_back"], true, "{exited}");
    overlay_shows(&mut page, why);
    let shown = overlay_text(&mut page).unwrap();
    assert!(shown.contains("exited with code 1"), "{shown}");
    assert!(shown.contains("previous version keeps running"), "{shown}");

    // The old app still serves, the template it read at its start.
    let (status, _, body) = request(port, "/", &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("template one"));

    // A tab opened now gets the page that runs; the fix brings both to it.
    let mut late = chrome.open(&format!("http://127.0.0.1:{port}/"));
    text_of(&mut late, "note", "template one");
    edit(&template, "template {% broken %}", "template fixed");
    for tab in [&mut page, &mut late] {
        text_of(tab, "note", "template fixed");
        assert_eq!(overlay_text(tab), None);
    }
}

#[test]
fn a_failed_first_build_answers_the_502_page_at_once() {
    let port = free_port();
    let app_port = free_port();
    let dir = command_project(&format!(
        "[build]\ncmd = 'sh build.sh'\n[run]\ncmd = 'exec python3 -m http.server {app_port} --bind 127.0.0.1'\n[proxy]\nlisten = \"{port}\"\napp = \"{app_port}\"\n"
    ));
    write(
        &dir.path().join("build.sh"),
        "echo 'main.go:3:1: syntax error' >&2; exit 1\n",
    );
    write(
        &dir.path().join("index.html"),
        "<!doctype html><title>up</title><p id=up>up</p>\n",
    );
    let mut h = hotrun(dir.path()).reload().start();
    h.wait_for("build_finished", |e| e["ok"] == false);
    let body = unavailable_at_once(port);
    assert!(body.contains("the build failed"), "{body}");
    assert!(body.contains("main.go:3"), "{body}");

    // While a build runs, a request waits for it instead.
    write(&dir.path().join("build.sh"), "sleep 0.3; exit 0\n");
    h.wait("build_started");
    let (status, _, body) = request(port, "/", &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<p id=up>up</p>"));
}

// ------------------------------------------------------------------------------------
// Without the proxy: a hand-written script tag
// ------------------------------------------------------------------------------------

/// Python's file server on `public/`, the page carrying the tag for `reload.listen`.
fn static_site_with_tag() -> (TempDir, Hotrun, u16) {
    let app_port = free_port();
    let reload_port = free_port();
    let dir = command_project(&format!(
        "[build]\ncmd = 'true'\n[run]\ncmd = 'exec python3 -m http.server {app_port} --bind 127.0.0.1 --directory public'\nready = \"tcp:127.0.0.1:{app_port}\"\n[reload]\nlisten = \"127.0.0.1:{reload_port}\"\n"
    ));
    let public = dir.path().join("public");
    write(
        &public.join("page.html"),
        &format!(
            "<!doctype html>\n<html><head><title>tag</title>\
             <link rel=\"stylesheet\" href=\"/style.css\">\
             <script src=\"http://127.0.0.1:{reload_port}/__hotrun/client.js\"></script>\
             <script src=\"/app.js\"></script></head>\
             <body><p id=\"note\">tag one</p></body></html>\n"
        ),
    );
    write(&public.join("app.js"), "window.appVersion = 1;\n");
    write(
        &public.join("style.css"),
        "body { background-color: rgb(1, 2, 3); }\n",
    );
    for file in ["page.html", "app.js", "style.css"] {
        date_in_the_past(&public.join(file));
    }
    let mut h = hotrun(dir.path()).reload().start();
    h.wait("app_ready");
    (dir, h, app_port)
}

#[test]
fn without_the_proxy_the_client_refetches_what_changed_before_it_reloads() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, _h, port) = static_site_with_tag();
    let public = dir.path().join("public");
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/page.html"));
    connected(&mut page);
    assert_eq!(page.eval("window.appVersion"), json!(1));
    save_same_second(&public.join("app.js"), "appVersion = 1", "appVersion = 2");
    page.wait_for("the new script to run", "window.appVersion === 2", T);
    connected(&mut page);
    save_same_second(&public.join("page.html"), "tag one", "tag two");
    text_of(&mut page, "note", "tag two");
    connected(&mut page);
    save_same_second(&public.join("page.html"), "tag two", "tag three");
    text_of(&mut page, "note", "tag three");
    assert_eq!(page.loads(), 4, "one reload per save");

    // An atomic save of the stylesheet: swapped, no reload.
    connected(&mut page);
    page.eval("window.marker = 1");
    save(
        Save::Rename("{}.tmp"),
        &public.join("style.css"),
        "body { background-color: rgb(40, 50, 60); }\n",
    );
    page.wait_for(
        "the swapped stylesheet",
        "getComputedStyle(document.body).backgroundColor === 'rgb(40, 50, 60)'",
        T,
    );
    assert_eq!(page.eval("window.marker"), json!(1));
    assert_eq!(page.loads(), 4);
    // The next reload keeps the new style: the browser's copy of the plain URL was
    // fetched anew too.
    save_same_second(&public.join("page.html"), "tag three", "tag four");
    text_of(&mut page, "note", "tag four");
    assert_eq!(
        page.eval("getComputedStyle(document.body).backgroundColor"),
        json!("rgb(40, 50, 60)")
    );
}
