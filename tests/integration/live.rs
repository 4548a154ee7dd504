//! Browser live reload in real headless Chromium, driven over the DevTools protocol:
//! a save reloads the page, a compile error shows over it (as text), a stylesheet is
//! swapped in place, an asset reloads without a build, a restarted hotrun is found
//! again, and the client works under a nonce-based CSP. Each test waits on what the
//! page shows, with a deadline; without Chromium it is skipped loudly (a failure under
//! `CI=true`).

use std::time::Duration;

use serde_json::{json, Value};

use hotrun_support::browser::{Chrome, Page};
use hotrun_support::http::request;
use hotrun_support::*;

/// Builds happen inside these waits.
const T: Duration = DEADLINE;

const OVERLAY_TEXT: &str = "(() => { const o = document.querySelector('hotrun-overlay'); \
     return o && o.shadowRoot ? o.shadowRoot.textContent : null })()";

fn connected(page: &mut Page) {
    page.wait_for(
        "the reload client to connect",
        "window.__hotrun && window.__hotrun.connected",
        T,
    );
}

fn version(page: &mut Page, v: &str) {
    page.wait_for(
        &format!("version {v} on the page"),
        &format!("document.getElementById('version')?.textContent === '{v}'"),
        T,
    );
}

fn overlay_text(page: &mut Page) -> Option<String> {
    page.eval(OVERLAY_TEXT).as_str().map(str::to_string)
}

fn no_builds_since(h: &Hotrun, from: usize) {
    let builds: Vec<Value> = h
        .events_since(from)
        .into_iter()
        .filter(|e| e["event"] == "build_started")
        .collect();
    if !builds.is_empty() {
        h.fail(&format!("a build started: {builds:?}"));
    }
}

#[test]
fn a_saved_code_change_reloads_the_page_and_keeps_its_scroll_position() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, _h, port) = site_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    page.eval("window.marker = 1; window.scrollTo(0, 1234)");
    page.wait_for("the page to scroll", "window.scrollY === 1234", T);

    edit(&dir.path().join("src/main.rs"), "\"v1\"", "\"v2\"");
    version(&mut page, "v2");
    // It really reloaded: what the old page kept in `window` is gone…
    assert_eq!(page.eval("typeof window.marker"), json!("undefined"));
    assert_eq!(page.loads(), 2);
    // …and the scroll position came back.
    page.wait_for("the scroll position back", "window.scrollY === 1234", T);
}

#[test]
fn a_compile_error_shows_over_the_page_as_text_until_it_is_fixed() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, _h, port) = site_behind_proxy();
    let url = format!("http://127.0.0.1:{port}/");
    let mut page = chrome.open(&url);
    connected(&mut page);

    let main = dir.path().join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    let line = source
        .lines()
        .position(|l| l.starts_with("fn main() {"))
        .unwrap()
        + 2;
    let hostile = "<img src=x onerror=window.pwned=1>";
    edit(
        &main,
        "fn main() {",
        &format!("fn main() {{\n    compile_error!(\"{hostile} is not here\");"),
    );
    let location = format!("src/main.rs:{line}");
    page.wait_for(
        "the error overlay",
        &format!("{OVERLAY_TEXT}?.includes('{location}')"),
        T,
    );
    let text = overlay_text(&mut page).unwrap();
    // The compiler's text is shown as text: no element made of it, nothing ran.
    assert!(text.contains(hostile), "{text}");
    assert_eq!(
        page.eval(
            "document.querySelector('hotrun-overlay').shadowRoot.querySelector('img') === null \
             && document.querySelector('img') === null && typeof window.pwned === 'undefined'"
        ),
        json!(true)
    );
    // The old page stays usable: Esc dismisses the overlay, the page works, the old
    // app still answers.
    page.eval("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))");
    page.wait_for(
        "the overlay dismissed",
        "document.querySelector('hotrun-overlay') === null",
        T,
    );
    assert_eq!(
        page.eval("document.getElementById('button').click(); window.clicked"),
        json!(1)
    );
    let (status, _, body) = request(port, "/", &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<h1 id=\"version\">v1</h1>"));

    // A tab opened now shows the failure on load.
    let mut late = chrome.open(&url);
    late.wait_for(
        "the overlay on load",
        &format!("{OVERLAY_TEXT}?.includes('{location}')"),
        T,
    );

    // Fixed (and changed): the overlay goes, the new version shows, in both tabs.
    std::fs::write(&main, source.replace("\"v1\"", "\"v2\"")).unwrap();
    for tab in [&mut page, &mut late] {
        version(tab, "v2");
        assert_eq!(overlay_text(tab), None);
    }
}

#[test]
fn stylesheets_swap_in_place_and_assets_reload_without_a_build() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (dir, mut h, port) = site_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    page.eval("window.marker = 1");
    let background = "getComputedStyle(document.body).backgroundColor";
    assert_eq!(page.eval(background), json!("rgb(255, 255, 255)"));
    let from = h.cursor();

    edit(
        &dir.path().join("static/site.css"),
        "rgb(255, 255, 255)",
        "rgb(10, 20, 30)",
    );
    page.wait_for(
        "the new background",
        &format!("{background} === 'rgb(10, 20, 30)'"),
        T,
    );
    // Through `@import` too.
    edit(
        &dir.path().join("static/theme.css"),
        "rgb(0, 0, 128)",
        "rgb(0, 128, 0)",
    );
    page.wait_for(
        "the imported stylesheet's new colour",
        "getComputedStyle(document.getElementById('version')).color === 'rgb(0, 128, 0)'",
        T,
    );
    // No reload: the page's state survived.
    assert_eq!(page.eval("window.marker"), json!(1));
    assert_eq!(page.loads(), 1);
    assert_eq!(
        page.eval("document.querySelectorAll('link[rel=stylesheet]').length"),
        json!(1)
    );
    h.wait_for("reload_sent", |e| e["kind"] == "css");
    no_builds_since(&h, from);

    // A template read at run time: the page reloads and shows it, no build.
    edit(
        &dir.path().join("templates/index.html"),
        "template one",
        "template two",
    );
    page.wait_for(
        "the new template",
        "document.getElementById('note')?.textContent === 'template two'",
        T,
    );
    assert_eq!(page.eval("typeof window.marker"), json!("undefined"));
    h.wait_for("change", |e| e["kind"] == "asset");
    no_builds_since(&h, from);
}

#[test]
fn after_hotrun_restarts_the_page_shows_the_badge_then_recovers() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let dir = fixture("site");
    let port = free_port();
    let start = || {
        let mut h = hotrun(dir.path())
            .reload()
            .args(&["--proxy", &port.to_string()])
            .start();
        h.wait("app_ready");
        h
    };
    let mut first = start();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    page.eval("window.marker = 1");

    first.send("quit");
    assert_eq!(first.wait_exit(), 0);
    page.wait_for(
        "the reconnecting badge",
        "document.querySelector('hotrun-badge')?.shadowRoot?.textContent.includes('reconnecting')",
        T,
    );
    assert_eq!(page.eval("window.marker"), json!(1));

    let _second = start();
    // A new hotrun means a new build id: the page reloads, the badge is gone.
    page.wait_for(
        "the page reloaded from the new hotrun",
        "typeof window.marker === 'undefined' && window.__hotrun && window.__hotrun.connected \
         && document.querySelector('hotrun-badge') === null",
        T,
    );
    version(&mut page, "v1");
}

#[test]
fn under_a_nonce_csp_the_client_runs_and_an_exit_shows_over_the_page() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (_dir, mut h, port) = site_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/csp"));
    connected(&mut page);
    // The policy is in force (the script without the nonce was blocked)…
    assert_eq!(
        page.eval("[window.inline, typeof window.blocked]"),
        json!([1, "undefined"])
    );

    // …and the client's overlay, styled under it, shows the app's exit.
    let _ = request(port, "/exit", &[]);
    h.wait("app_exited");
    page.wait_for(
        "the exit overlay",
        &format!("{OVERLAY_TEXT}?.includes('code 3')"),
        T,
    );
    assert_eq!(
        page.eval(
            "getComputedStyle(document.querySelector('hotrun-overlay').shadowRoot\
             .querySelector('.backdrop')).position"
        ),
        json!("fixed")
    );
    let violations: Vec<String> = page
        .console()
        .into_iter()
        .filter(|l| l.contains("Content Security Policy") && !l.contains("window.blocked"))
        .collect();
    assert!(
        violations.iter().all(|l| !l.contains("hotrun")),
        "{violations:?}"
    );
}

#[test]
fn the_client_starts_once_and_a_build_that_changes_nothing_only_clears() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    let (_dir, mut h, port) = site_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    // Included a second time: it does not start again.
    page.eval(
        "new Promise(done => { const s = document.createElement('script'); \
         s.src = '/__hotrun/client.js'; s.onload = done; document.head.append(s); })",
    );
    h.send("rebuild");
    h.wait_for("reload_sent", |e| e["kind"] == "ok");
    page.wait_for("the ok message", "window.__hotrun.messages.ok === 1", T);
    assert_eq!(
        page.eval("[window.__hotrun.messages.hello, window.__hotrun.messages.building]"),
        json!([1, 1])
    );
    assert_eq!(page.loads(), 1);
    assert_eq!(overlay_text(&mut page), None);
}

#[test]
fn a_gitignored_generated_stylesheet_named_in_the_assets_swaps() {
    let Some(chrome) = Chrome::launch() else {
        return;
    };
    // Tailwind's way: the stylesheet is written by a generator, and gitignored.
    let dir = fixture("site");
    write(&dir.path().join(".gitignore"), "/static/site.css\n");
    let (mut h, port) = behind_proxy(dir.path());
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    connected(&mut page);
    let background = "getComputedStyle(document.body).backgroundColor";
    assert_eq!(page.eval(background), json!("rgb(255, 255, 255)"));
    // The generator writes it anew (temp file, then rename), as build tools do.
    let css = dir.path().join("static/site.css");
    let text = std::fs::read_to_string(&css)
        .unwrap()
        .replace("rgb(255, 255, 255)", "rgb(10, 20, 30)");
    let temp = dir.path().join("static/.site.css.tmp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, &css).unwrap();
    page.wait_for(
        "the generated stylesheet's new background",
        &format!("{background} === 'rgb(10, 20, 30)'"),
        T,
    );
    assert_eq!(page.loads(), 1, "swapped in place, not reloaded");
    h.wait_for("reload_sent", |e| e["kind"] == "css");
}
