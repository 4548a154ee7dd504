//! The browser rows, in headless Chromium: hotrun's own (code, template and CSS saves
//! on the site fixture), then a static page through hotrun's proxy side by side with
//! Vite's dev server, with the same edits in the same browser.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotrun_support::browser::{Chrome, Page};
use hotrun_support::http::http_get_patiently;
use hotrun_support::{behind_proxy, free_port, site_behind_proxy, write, TempDir};

use crate::fixtures::set_version;
use crate::peers::{installed, Peer};
use crate::table::{median, ms, ms1, wall_ms, Table};
use crate::REPS;

/// When the page now shown was painted (wall clock ms), once `ready` is true.
const PAINTED: &str =
    "(() => { const p = performance.getEntriesByName('first-contentful-paint')[0]; \
     const n = performance.getEntriesByType('navigation')[0]; \
     const at = p ? p.startTime : (n && n.loadEventEnd) || 0; \
     return at ? performance.timeOrigin + at : 0 })()";

pub fn browser_rows(table: &mut Table) {
    eprintln!("browser…");
    let Some(chrome) = Chrome::launch() else {
        table.row(
            "browser rows",
            "hotrun, proxy",
            "skipped".into(),
            "—",
            "Chromium is not installed".into(),
        );
        return;
    };
    let (dir, mut h, port) = site_behind_proxy();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    let forever = Duration::from_secs(300);
    page.wait_for(
        "connected",
        "window.__hotrun && window.__hotrun.connected",
        forever,
    );

    // Code: save → the new version painted.
    let (mut shown, mut over) = (Vec::new(), Vec::new());
    for n in 2..2 + REPS {
        std::thread::sleep(Duration::from_millis(500));
        let start = wall_ms();
        let version = set_version(dir.path(), n);
        let finished = h.wait("build_finished");
        page.wait_for(
            "the new version",
            &format!("document.getElementById('version')?.textContent === '{version}' && window.__hotrun && window.__hotrun.connected"),
            forever,
        );
        let painted = page.eval(PAINTED).as_f64().unwrap();
        let build = finished["duration_ms"].as_f64().unwrap();
        shown.push(painted - start);
        over.push(painted - start - build);
    }
    table.row(
        "browser: code save → new version shown",
        "hotrun, proxy",
        ms(&shown),
        "build + 100 ms",
        format!("build + {} (build as hotrun timed it)", ms(&over)),
    );

    // An asset (a template read at run time): save → the page reloaded and shown.
    let mut reloaded = Vec::new();
    let template = dir.path().join("templates/index.html");
    for n in 0..REPS {
        std::thread::sleep(Duration::from_millis(500));
        let text = std::fs::read_to_string(&template).unwrap();
        let (from, to) = (format!("template {n}"), format!("template {}", n + 1));
        let text = if n == 0 {
            text.replace("template one", &to)
        } else {
            text.replace(&from, &to)
        };
        let start = wall_ms();
        std::fs::write(&template, text).unwrap();
        page.wait_for(
            "the new template",
            &format!("document.getElementById('note')?.textContent === '{to}' && window.__hotrun && window.__hotrun.connected"),
            forever,
        );
        reloaded.push(page.eval(PAINTED).as_f64().unwrap() - start);
    }
    table.row(
        "browser: template (watch.assets) save → page reloaded and shown",
        "hotrun, proxy",
        ms(&reloaded),
        "≤ 80 ms",
        "no build".into(),
    );

    // A stylesheet: save → the new style applied (the old link removed once the new
    // one loaded; a mutation observer notes the moment).
    let mut applied = Vec::new();
    let css = dir.path().join("static/site.css");
    for n in 0..REPS * 2 {
        std::thread::sleep(Duration::from_millis(300));
        page.eval(
            "window.__swapped = 0; new MutationObserver((ms, o) => { \
               for (const m of ms) for (const r of m.removedNodes) \
                 if (r.tagName === 'LINK') { window.__swapped = performance.timeOrigin + performance.now(); o.disconnect(); } \
             }).observe(document.head, { childList: true }); true",
        );
        let text = std::fs::read_to_string(&css).unwrap();
        let start_of = text.find("background-color: rgb(").unwrap();
        let end_of = start_of + text[start_of..].find(')').unwrap() + 1;
        let colour = format!("rgb({}, 0, 0)", n + 1);
        let text = format!(
            "{}background-color: {colour}{}",
            &text[..start_of],
            &text[end_of..]
        );
        let start = wall_ms();
        std::fs::write(&css, text).unwrap();
        page.wait_for(
            "the new style",
            &format!("window.__swapped && getComputedStyle(document.body).backgroundColor === '{colour}'"),
            forever,
        );
        applied.push(page.eval("window.__swapped").as_f64().unwrap() - start);
    }
    table.row(
        "browser: CSS save → style applied",
        "hotrun, proxy",
        ms1(&applied),
        "≤ 15 ms",
        format!("no reload, no build; {} saves", applied.len()),
    );
}

// ------------------------------------------------------------------------------------
// Side by side with Vite
// ------------------------------------------------------------------------------------

/// Edits per row and tool on the static page.
pub const EDITS: usize = 12;

/// How long an edit may take to show; later, it counts as not shown.
const EDIT_DEADLINE: Duration = Duration::from_secs(3);

/// The text of the page's `#note`.
const NOTE: &str = "document.getElementById('note')?.textContent";

/// Whether a reload client of the page holds an open websocket (the page notes its
/// sockets: the same check for every dev server).
const LISTENING: &str = "window.__sockets && window.__sockets.some(s => s.readyState === 1)";

/// The page body's background colour in the fixture before any edit.
const FIRST_COLOUR: &str = "rgb(250, 250, 250)";

/// A static site: `public/` holds a page, its stylesheet and a small script. Both tools
/// serve a copy each.
fn static_page() -> TempDir {
    let dir = TempDir::new();
    let public = dir.path().join("public");
    write(
        &public.join("index.html"),
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Field notes</title>
  <script>
    // The page's websockets, so that a reader can tell when a reload client listens.
    window.__sockets = [];
    window.WebSocket = class extends WebSocket {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  </script>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <header>
    <h1>Field notes</h1>
    <nav><a href="/">Home</a> · <a href="/#log">Log</a> · <a href="/#about">About</a></nav>
  </header>
  <main>
    <p id="note">note 0</p>
    <section id="log">
      <h2>Log</h2>
      <article>
        <h3>Morning</h3>
        <p>Fog over the estuary until ten; the tide turned at 10:42 and the waders came
        in with it: curlews, a few godwits, one grey heron standing where it always stands.</p>
        <ul>
          <li>Wind: north-west, 3</li>
          <li>Water: 11 °C</li>
          <li>Visibility: 200 m, then 5 km</li>
        </ul>
      </article>
      <article>
        <h3>Afternoon</h3>
        <p>Counted the terns on the shingle bank twice, got two different numbers, wrote
        down the smaller. The ferry ran late.</p>
        <table>
          <thead><tr><th>Species</th><th>Count</th></tr></thead>
          <tbody>
            <tr><td>Sandwich tern</td><td>41</td></tr>
            <tr><td>Common tern</td><td>17</td></tr>
            <tr><td>Little tern</td><td>3</td></tr>
          </tbody>
        </table>
      </article>
    </section>
    <section id="about">
      <h2>About</h2>
      <p>Notes kept by hand, typed up in the evening.</p>
    </section>
  </main>
  <footer><p id="stamp"></p></footer>
  <script type="module" src="/app.js"></script>
</body>
</html>
"#,
    );
    write(
        &public.join("style.css"),
        &format!(
            "body {{\n  background-color: {FIRST_COLOUR};\n  color: rgb(30, 30, 30);\n  \
             font: 16px/1.5 system-ui, sans-serif;\n  margin: 0 auto;\n  max-width: 42rem;\n  \
             padding: 1rem;\n}}\n\nheader nav a {{\n  color: rgb(20, 80, 160);\n}}\n\n\
             #note {{\n  font-weight: 600;\n}}\n\ntable {{\n  border-collapse: collapse;\n}}\n\n\
             td, th {{\n  border: 1px solid rgb(200, 200, 200);\n  padding: 0.2rem 0.6rem;\n}}\n"
        ),
    );
    write(
        &public.join("app.js"),
        "// Dates the page: the moment this copy of it ran.\n\
         const stamp = document.getElementById('stamp');\n\
         stamp.textContent = `Page shown at ${new Date().toLocaleTimeString()}`;\n",
    );
    dir
}

/// Vite's dev server from `benches/vite`, installed there by npm when it is not yet:
/// the path of its program and its version, or why there is none.
fn vite() -> Result<(PathBuf, String), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/vite");
    let bin = dir.join("node_modules/.bin/vite");
    if !bin.exists() {
        if !installed("npm") {
            return Err("not installed (npm is not on the PATH)".into());
        }
        eprintln!("  installing Vite: npm install --prefix benches/vite…");
        let installed = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !bin.exists() {
            return Err("not installed (`npm install --prefix benches/vite` failed)".into());
        }
    }
    let version = std::fs::read_to_string(dir.join("node_modules/vite/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(String::from))
        .unwrap_or_else(|| "?".into());
    Ok((bin, version))
}

/// Wait until `cond` (a JavaScript expression) holds on the page, for at most `within`;
/// false when it never did. An exception, or a page between two documents, counts as
/// not yet.
fn holds_within(page: &mut Page, what: &str, cond: &str, within: Duration) -> bool {
    let until = wall_ms() + within.as_secs_f64() * 1000.0;
    let probe = format!(
        "(() => {{ try {{ if ({cond}) return 'yes'; }} catch (_) {{}} \
         return Date.now() > {until:.0} ? 'no' : ''; }})()"
    );
    // Waiting longer than `within` only when the browser does not answer at all.
    page.wait_for(what, &probe, within + Duration::from_secs(60)) == "yes"
}

/// Reload the page from the server, cache bypassed, and wait for its load event: the
/// next edit starts from what is on disk.
fn hard_reload(page: &mut Page) {
    let before = page.loads();
    page.call("Page.reload", serde_json::json!({ "ignoreCache": true }));
    let start = Instant::now();
    while page.loads() == before && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 300–500 ms between two edits, varied.
fn gap(n: usize) -> Duration {
    Duration::from_millis(300 + (n as u64 * 73) % 201)
}

/// Wait until `from + gap(n)`, with the page's reload client listening.
fn next_edit(page: &mut Page, from: Instant, n: usize) {
    holds_within(
        page,
        "the reload client listening",
        LISTENING,
        Duration::from_secs(10),
    );
    let due = from + gap(n);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// What one tool did with the static page.
#[derive(Default)]
struct PageResult {
    /// HTML saves: save → the new document painted, ms (shown ones only).
    html: Vec<f64>,
    /// HTML saves whose text never showed within the deadline.
    html_missed: usize,
    /// Of those, the ones where the page did reload, to the old text.
    html_stale: usize,
    /// Page loads that followed each HTML save (hand reloads left out).
    loads: Vec<i64>,
    /// CSS saves: save → the new colour seen in a frame, ms (shown ones only).
    css: Vec<f64>,
    /// CSS saves: save → the old `<link>` removed, ms.
    css_swapped: Vec<f64>,
    /// CSS saves whose colour never showed within the deadline.
    css_missed: usize,
    /// Page loads during the CSS saves (hand reloads left out).
    css_loads: i64,
}

/// Open the page served on `port`, then edit `public/` under `dir` as a user would:
/// EDITS saves of index.html (a new `#note`), then EDITS saves of style.css (a new
/// background colour), each waited for up to EDIT_DEADLINE.
fn edit_page(chrome: &Chrome, port: u16, dir: &Path) -> PageResult {
    let mut r = PageResult::default();
    let mut page = chrome.open(&format!("http://127.0.0.1:{port}/"));
    let public = dir.join("public");

    // HTML: save → the new document painted, with the new text.
    let index = public.join("index.html");
    let mut hand = 0; // hand reloads so far
    let mut marks = Vec::new(); // page loads before each save, hand reloads left out
    let mut current = "note 0".to_string();
    let mut last = Instant::now();
    for n in 1..=EDITS {
        next_edit(&mut page, last, n);
        let next = format!("note {n}");
        let text = std::fs::read_to_string(&index)
            .unwrap()
            .replace(&format!(">{current}<"), &format!(">{next}<"));
        let before = i64::from(page.loads()) - hand;
        marks.push(before);
        let shown = format!("{NOTE} === '{next}' && {PAINTED} > 0");
        let start = wall_ms();
        last = Instant::now();
        std::fs::write(&index, text).unwrap();
        if holds_within(&mut page, "the new text", &shown, EDIT_DEADLINE) {
            r.html.push(page.eval(PAINTED).as_f64().unwrap() - start);
        } else {
            r.html_missed += 1;
            if i64::from(page.loads()) - hand > before {
                r.html_stale += 1;
            }
            hard_reload(&mut page);
            hand += 1;
            holds_within(&mut page, "the new text", &shown, Duration::from_secs(10));
        }
        current = next;
    }
    // Late reloads (a loop) come after the last save too.
    std::thread::sleep(Duration::from_secs(2));
    marks.push(i64::from(page.loads()) - hand);
    r.loads = marks.windows(2).map(|w| w[1] - w[0]).collect();

    // CSS: save → the new colour applied. A frame loop in the page, started before the
    // save, notes when the computed colour first matches; a mutation observer notes
    // when the old <link> goes (both tools swap a clone in and drop the old one).
    let css = public.join("style.css");
    let loads_before = i64::from(page.loads()) - hand;
    let mut current = FIRST_COLOUR.to_string();
    for n in 1..=EDITS {
        next_edit(&mut page, last, n);
        let colour = format!("rgb(250, 250, {})", 250 - n);
        page.eval(&format!(
            "(() => {{ window.__applied = 0; window.__swapped = 0; \
               new MutationObserver((ms, o) => {{ \
                 for (const m of ms) for (const r of m.removedNodes) \
                   if (r.tagName === 'LINK') {{ window.__swapped = performance.timeOrigin + performance.now(); o.disconnect(); return; }} \
               }}).observe(document.head, {{ childList: true }}); \
               const poll = () => {{ \
                 if (getComputedStyle(document.body).backgroundColor === '{colour}') \
                   window.__applied = performance.timeOrigin + performance.now(); \
                 else requestAnimationFrame(poll); \
               }}; \
               requestAnimationFrame(poll); return true; }})()"
        ));
        let text = std::fs::read_to_string(&css).unwrap().replace(
            &format!("background-color: {current};"),
            &format!("background-color: {colour};"),
        );
        let start = wall_ms();
        last = Instant::now();
        std::fs::write(&css, text).unwrap();
        if holds_within(
            &mut page,
            "the new colour",
            "window.__applied > 0",
            EDIT_DEADLINE,
        ) {
            r.css
                .push(page.eval("window.__applied").as_f64().unwrap() - start);
            let swapped = page.eval("window.__swapped").as_f64().unwrap_or(0.0);
            if swapped > 0.0 {
                r.css_swapped.push(swapped - start);
            }
        } else {
            r.css_missed += 1;
            hard_reload(&mut page);
            hand += 1;
            holds_within(
                &mut page,
                "the new colour",
                &format!("getComputedStyle(document.body).backgroundColor === '{colour}'"),
                Duration::from_secs(10),
            );
        }
        current = colour;
    }
    std::thread::sleep(Duration::from_millis(500));
    r.css_loads = i64::from(page.loads()) - hand - loads_before;
    r
}

/// "1 load per save", or how many saves gave how many loads, naming a loop.
fn loads_note(loads: &[i64]) -> String {
    if loads.iter().all(|&l| l == 1) {
        return "1 page load per save".into();
    }
    let mut counts = std::collections::BTreeMap::new();
    for &l in loads {
        *counts.entry(l).or_insert(0) += 1;
    }
    let spread: Vec<String> = counts
        .iter()
        .map(|(loads, saves)| format!("{saves} × {loads}"))
        .collect();
    let mut note = format!("page loads per save: {}", spread.join(", "));
    let looping: Vec<String> = loads
        .iter()
        .enumerate()
        .filter(|(_, &l)| l > 1)
        .map(|(i, l)| format!("save {} gave {l}", i + 1))
        .collect();
    if !looping.is_empty() {
        note.push_str(&format!(" (reload loop: {})", looping.join(", ")));
    }
    note
}

/// "N of M edits not shown", with the reloads that showed the old page.
fn missed_note(missed: usize, stale: Option<usize>) -> String {
    let mut note = format!("{missed} of {EDITS} edits not shown");
    if let Some(stale) = stale.filter(|&s| s > 0) {
        note.push_str(&format!(" ({stale} reloaded to the old page)"));
    }
    note
}

fn ratio(ours: &[f64], theirs: &[f64]) -> String {
    let r = median(ours) / median(theirs);
    if r.is_finite() {
        format!("hotrun/Vite {r:.2}×")
    } else {
        "hotrun/Vite —".into()
    }
}

/// The static page through hotrun's proxy (Python's `http.server` as the app: it
/// answers `If-Modified-Since` with 304, as real servers do) and on Vite's dev server,
/// with the same edits, in the same browser.
pub fn side_by_side(table: &mut Table) {
    eprintln!("browser, side by side with Vite…");
    let html_row = "browser: HTML save → page reloaded and shown, static page";
    let css_row = "browser: CSS save → style applied, static page";
    let ours_name = "hotrun, proxy + python3 http.server";
    let Some(chrome) = Chrome::launch() else {
        table.row(
            "browser rows, static page",
            ours_name,
            "skipped".into(),
            "—",
            "Chromium is not installed".into(),
        );
        return;
    };

    // hotrun.
    let dir = static_page();
    write(
        &dir.path().join(".hotrun.toml"),
        "[build]\ncmd = \"true\"\n\n[run]\n\
         cmd = \"exec python3 -m http.server \\\"$PORT\\\" --bind 127.0.0.1 --directory public\"\n\n\
         [watch]\nassets = [\"public/\"]\n",
    );
    let (h, port) = behind_proxy(dir.path());
    let ours = edit_page(&chrome, port, dir.path());
    drop(h);

    // Vite, on its own copy; the guard stops it (its whole process group) even when a
    // wait panics.
    let theirs = vite().and_then(|(bin, version)| {
        let dir = static_page();
        let port = free_port();
        let public = dir.path().join("public");
        let log = dir.path().join("vite.log");
        let argv = [
            bin.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--strictPort",
            "--clearScreen",
            "false",
        ]
        .map(String::from);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut server = Peer::start_logged(&public, port, &argv, &log);
        let start = Instant::now();
        while !http_get_patiently(port).is_ok_and(|body| body.contains("id=\"note\"")) {
            if !server.running() || start.elapsed() > Duration::from_secs(60) {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "did not start: {}",
                    said.lines().last().unwrap_or("no output")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let result = edit_page(&chrome, port, dir.path());
        drop(server);
        Ok((format!("Vite {version} dev server"), result))
    });

    let vite = theirs.as_ref().ok();
    let versus = |ours: &[f64], theirs: Option<&[f64]>| {
        theirs.map_or(String::new(), |theirs| format!("{}; ", ratio(ours, theirs)))
    };
    let html_note = |r: &PageResult| {
        format!(
            "{}; {}",
            missed_note(r.html_missed, Some(r.html_stale)),
            loads_note(&r.loads)
        )
    };
    let css_note = |r: &PageResult| {
        format!(
            "{}; old <link> removed after {}; {}",
            missed_note(r.css_missed, None),
            ms1(&r.css_swapped),
            reloads_note(r.css_loads)
        )
    };
    // Each measure: hotrun's row, then Vite's right below it.
    type Times = fn(&PageResult) -> &[f64];
    type Note<'a> = &'a dyn Fn(&PageResult) -> String;
    type Row<'a> = (&'a str, Times, fn(&[f64]) -> String, Note<'a>);
    let rows: [Row; 2] = [
        (html_row, |r| &r.html, ms, &html_note),
        (css_row, |r| &r.css, ms1, &css_note),
    ];
    for (row, times, show, note) in rows {
        table.row(
            row,
            ours_name,
            show(times(&ours)),
            "≤ Vite (same run)",
            versus(times(&ours), vite.map(|(_, t)| times(t))) + &note(&ours),
        );
        if let Some((name, theirs)) = vite {
            table.row(row, name, show(times(theirs)), "—", note(theirs));
        }
    }
    if let Err(why) = &theirs {
        table.row(
            "browser rows, static page",
            "Vite dev server",
            "—".into(),
            "—",
            why.clone(),
        );
    }
}

/// Page loads during the CSS saves, said.
fn reloads_note(loads: i64) -> String {
    match loads {
        0 => "no reload".into(),
        1 => "1 page reload".into(),
        n => format!("{n} page reloads"),
    }
}
