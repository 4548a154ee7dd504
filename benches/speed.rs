//! hotrun's benchmark: every speed, weight and scale figure of the product brief,
//! measured on this machine, with the peers (watchexec, cargo-watch, systemfd) side by
//! side where they are installed. Run it with
//!
//! ```sh
//! cargo bench --bench speed
//! ```
//!
//! It builds the release hotrun (the bench profile), makes its fixtures in temp dirs,
//! and prints one Markdown table: medians over several repetitions with min–max.
//! Nothing here is asserted; timings on a shared machine are for reading, not for
//! failing a build.
//!
//! The browser rows run in headless Chromium. Some of them put hotrun side by side with
//! Vite's dev server, in the same run, on the same static page and with the same edits:
//! hotrun's proxy in front of Python's `http.server`, against Vite serving the page
//! itself. Vite comes from `benches/vite` (pinned there; the first run installs it with
//! `npm install --prefix benches/vite` when npm is on the `PATH`, and leaves its rows
//! out when that cannot be done). Only the browser rows:
//!
//! ```sh
//! HOTRUN_BENCH_ONLY=browser cargo bench --bench speed
//! ```
//!
//! Only the output flood (memory and exit time under an app writing as fast as it can):
//!
//! ```sh
//! HOTRUN_BENCH_ONLY=flood cargo bench --bench speed
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotrun_support::browser;
use hotrun_support::http::{http_get_patiently, wait_serving, Hammer};
use hotrun_support::{
    app_under, behind_proxy, fixture, free_port, hotrun, hotrun_bin, proc_field, site_behind_proxy,
    write, TempDir,
};

/// Repetitions per row (the big tree and the storm run fewer: they take long).
const REPS: usize = 5;

fn main() {
    let started = Instant::now();
    let only = std::env::var("HOTRUN_BENCH_ONLY").unwrap_or_default();
    assert!(
        matches!(only.as_str(), "" | "browser" | "flood"),
        "HOTRUN_BENCH_ONLY={only}: the parts that run alone are `browser` and `flood`"
    );
    let everything = only.is_empty();
    let mut table = Table::default();
    eprintln!("hotrun benchmark: this takes several minutes");
    if everything {
        reaction(&mut table);
        for slow in [false, true] {
            swaps(&mut table, slow);
        }
    }
    if everything || only == "browser" {
        browser_rows(&mut table);
        side_by_side(&mut table);
    }
    if everything {
        idle(&mut table);
        big_tree(&mut table);
    }
    if everything || only == "flood" {
        flood(&mut table);
    }
    println!("{}", machine());
    println!();
    table.print();
    println!();
    let rest = if everything {
        "; the big tree and the flood over 3, the storm once"
    } else if only == "flood" {
        "; the flood over 3"
    } else {
        ""
    };
    println!(
        "Medians over {REPS} runs (min–max){rest}; the static page rows over {EDITS} edits \
         per tool, shown ones only. Whole run: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------

#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn row(&mut self, what: &str, who: &str, figure: String, target: &str, note: String) {
        eprintln!("  {what} | {who} | {figure} | {note}");
        self.rows
            .push([what.into(), who.into(), figure, target.into(), note]);
    }

    fn print(&self) {
        println!("| measure | tool / mode | result | target | notes |");
        println!("|---|---|---|---|---|");
        for r in &self.rows {
            println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
        }
    }
}

/// Median, min and max of a non-empty set.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

fn ms(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    let (m, lo, hi) = stats(values);
    format!("{m:.0} ms ({lo:.0}–{hi:.0})")
}

fn ms1(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    let (m, lo, hi) = stats(values);
    format!("{m:.1} ms ({lo:.1}–{hi:.1})")
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        stats(values).0
    }
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown OS".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let date = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{date}: {cores} cores ({cpu}), {os}, Linux {}",
        kernel.trim()
    )
}

// ------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------

/// The std-only web app; with `slow`, a build script that sleeps 2 s on every build.
fn webapp(slow: bool) -> TempDir {
    let dir = fixture("webapp");
    if slow {
        write(
            &dir.path().join("build.rs"),
            "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(2));\n}\n",
        );
    }
    dir
}

/// Replace the version string the app serves; returns the new one.
fn set_version(dir: &Path, n: usize) -> String {
    let main = dir.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    let start = text.find("const VERSION: &str = \"").unwrap() + 23;
    let end = start + text[start..].find('"').unwrap();
    let version = format!("v{n}");
    std::fs::write(
        &main,
        format!("{}{}{}", &text[..start], version, &text[end..]),
    )
    .unwrap();
    version
}

/// `cargo build` after the same edit, timed: the fixture's own build time, measured
/// the way the swaps are — with the app running and a client hammering it, since on two
/// cores that load slows a build down.
fn cargo_build_time(slow: bool) -> Vec<f64> {
    let dir = webapp(slow);
    let build = |dir: &Path| {
        let start = Instant::now();
        let status = Command::new("cargo")
            .args(["build", "--quiet"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed().as_secs_f64() * 1000.0
    };
    build(dir.path());
    let port = free_port();
    let app = Peer::start(dir.path(), port, &["target/debug/webapp"]);
    wait_serving(port, "v1", "the fixture app");
    let times = (1..=REPS)
        .map(|n| {
            std::thread::sleep(Duration::from_millis(500));
            let hammer = Hammer::flat_out(port);
            std::thread::sleep(Duration::from_millis(100));
            set_version(dir.path(), 100 + n);
            let time = build(dir.path());
            hammer.finish();
            time
        })
        .collect();
    drop(app);
    times
}

// ------------------------------------------------------------------------------------
// Peers
// ------------------------------------------------------------------------------------

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A peer tool running in its own process group; dropped, the group is killed.
struct Peer {
    child: Child,
}

impl Peer {
    fn start(dir: &Path, port: u16, argv: &[&str]) -> Peer {
        use std::os::unix::process::CommandExt;
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        Peer { child }
    }

    /// Like `start`, with the peer's output in the file `log`.
    fn start_logged(dir: &Path, port: u16, argv: &[&str], log: &Path) -> Peer {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        Peer { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this benchmark started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && start.elapsed().as_secs() < 5 {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The peers' command lines: (name, mode, argv with `{port}` for the port).
fn peers() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let mut list = Vec::new();
    if installed("watchexec") {
        list.push((
            "watchexec -r",
            "direct",
            vec![
                "watchexec",
                "-r",
                "-e",
                "rs",
                "-w",
                "src",
                "--",
                "cargo",
                "run",
                "-q",
            ],
        ));
        list.push((
            "watchexec -r --socket",
            "listen",
            vec![
                "watchexec",
                "-r",
                "-e",
                "rs",
                "-w",
                "src",
                "--socket",
                "{port}",
                "--",
                "cargo",
                "run",
                "-q",
            ],
        ));
    }
    if installed("cargo-watch") {
        list.push((
            "cargo watch -x run",
            "direct",
            vec!["cargo", "watch", "-q", "-x", "run"],
        ));
        if installed("systemfd") {
            list.push((
                "systemfd + cargo watch",
                "listen",
                vec![
                    "systemfd",
                    "--no-pid",
                    "-q",
                    "-s",
                    "http::{port}",
                    "--",
                    "cargo",
                    "watch",
                    "-q",
                    "-x",
                    "run",
                ],
            ));
        }
    }
    list
}

fn argv_for(argv: &[&str], port: u16) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect()
}

// ------------------------------------------------------------------------------------
// Reaction: write → build_started
// ------------------------------------------------------------------------------------

fn reaction(table: &mut Table) {
    eprintln!("reaction…");
    let dir = webapp(false);
    let port = free_port();
    let mut h = hotrun(dir.path()).port(port).start();
    h.wait("app_ready");
    let mut times = Vec::new();
    for n in 0..REPS * 4 {
        std::thread::sleep(Duration::from_millis(300));
        let main = dir.path().join("src/main.rs");
        let text = std::fs::read_to_string(&main)
            .unwrap()
            .replace(&format!("// edit {}\n", n.wrapping_sub(1)), "");
        let start = Instant::now();
        write(&main, &format!("{text}// edit {n}\n"));
        h.wait("build_started");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        h.wait("build_finished");
        h.wait("app_ready");
    }
    table.row(
        "reaction: save → `build_started`",
        "hotrun (debounce 30 ms)",
        ms1(&times),
        "≤ 35 ms",
        format!("{} saves", times.len()),
    );
}

// ------------------------------------------------------------------------------------
// Swaps: save → new version served
// ------------------------------------------------------------------------------------

struct SwapResult {
    served: Vec<f64>,
    failed: usize,
    longest: Vec<f64>,
}

/// Edit, then time until the new version is served, hammering all along.
fn measure_swaps(dir: &Path, port: u16, first: usize) -> SwapResult {
    let mut result = SwapResult {
        served: Vec::new(),
        failed: 0,
        longest: Vec::new(),
    };
    for n in first..first + REPS {
        std::thread::sleep(Duration::from_millis(500));
        let hammer = Hammer::flat_out(port);
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        let version = set_version(dir, n);
        let served = hammer.wait_for(&version);
        std::thread::sleep(Duration::from_millis(200));
        let samples = hammer.finish();
        let failed = samples.iter().filter(|s| s.result.is_err()).count();
        let longest = samples.iter().map(|s| s.took_ms()).fold(0.0, f64::max);
        result.served.push((served - start).as_secs_f64() * 1000.0);
        result.failed += failed;
        result.longest.push(longest);
    }
    result
}

fn swaps(table: &mut Table, slow: bool) {
    let fixture_name = if slow {
        "slow build (2 s build.rs)"
    } else {
        "trivial app"
    };
    eprintln!("swaps, {fixture_name}…");
    let build = cargo_build_time(slow);
    let build_median = median(&build);
    table.row(
        &format!("`cargo build` after an edit, {fixture_name}"),
        "cargo",
        ms(&build),
        "—",
        "the fixture's own build time".into(),
    );
    let mut hotrun_direct = f64::NAN;
    for mode in ["direct", "listen", "proxy"] {
        let dir = webapp(slow);
        let port = free_port();
        let mut b = hotrun(dir.path());
        b = match mode {
            "direct" => b.port(port),
            "listen" => b.args(&["--listen", &port.to_string()]),
            _ => b.args(&["--proxy", &port.to_string()]),
        };
        let mut h = b.start();
        h.wait("app_ready");
        wait_serving(port, "v1", "hotrun");
        let from = h.cursor();
        let r = measure_swaps(dir.path(), port, 2);
        let served = median(&r.served);
        if mode == "direct" {
            hotrun_direct = served;
        }
        // The build as hotrun timed it, swap by swap: what hotrun adds around it.
        let builds: Vec<f64> = h
            .events_since(from)
            .iter()
            .filter(|e| e["event"] == "build_finished")
            .filter_map(|e| e["duration_ms"].as_f64())
            .collect();
        let after: Vec<f64> = r.served.iter().zip(&builds).map(|(s, b)| s - b).collect();
        table.row(
            &format!("swap: save → new version served, {fixture_name}"),
            &format!("hotrun, {mode}"),
            ms(&r.served),
            "build + 60 ms; 0 failed",
            format!(
                "build + {:.0} ms; {} failed requests; longest request {}; \
                 hotrun's own build timing: {} + {}",
                served - build_median,
                r.failed,
                ms(&r.longest),
                ms(&builds),
                ms(&after)
            ),
        );
        drop(h);
    }
    for (name, mode, argv) in peers() {
        let dir = webapp(slow);
        let port = free_port();
        let argv = argv_for(&argv, port);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let peer = Peer::start(dir.path(), port, &argv);
        wait_serving(port, "v1", name);
        let r = measure_swaps(dir.path(), port, 2);
        let served = median(&r.served);
        table.row(
            &format!("swap: save → new version served, {fixture_name}"),
            &format!("{name} ({mode})"),
            ms(&r.served),
            "—",
            format!(
                "build + {:.0} ms; {} failed requests; longest request {}; {:.2}× hotrun direct",
                served - build_median,
                r.failed,
                ms(&r.longest),
                served / hotrun_direct
            ),
        );
        drop(peer);
    }
}

// ------------------------------------------------------------------------------------
// The browser
// ------------------------------------------------------------------------------------

/// When the page now shown was painted (wall clock ms), once `ready` is true.
const PAINTED: &str =
    "(() => { const p = performance.getEntriesByName('first-contentful-paint')[0]; \
     const n = performance.getEntriesByType('navigation')[0]; \
     const at = p ? p.startTime : (n && n.loadEventEnd) || 0; \
     return at ? performance.timeOrigin + at : 0 })()";

fn browser_rows(table: &mut Table) {
    eprintln!("browser…");
    let Some(chrome) = browser::Chrome::launch() else {
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
// The browser, side by side with Vite
// ------------------------------------------------------------------------------------

/// Edits per row and tool on the static page.
const EDITS: usize = 12;

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
fn holds_within(page: &mut browser::Page, what: &str, cond: &str, within: Duration) -> bool {
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
fn hard_reload(page: &mut browser::Page) {
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
fn next_edit(page: &mut browser::Page, from: Instant, n: usize) {
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
fn edit_page(chrome: &browser::Chrome, port: u16, dir: &Path) -> PageResult {
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
fn side_by_side(table: &mut Table) {
    eprintln!("browser, side by side with Vite…");
    let html_row = "browser: HTML save → page reloaded and shown, static page";
    let css_row = "browser: CSS save → style applied, static page";
    let ours_name = "hotrun, proxy + python3 http.server";
    let Some(chrome) = browser::Chrome::launch() else {
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

// ------------------------------------------------------------------------------------
// Idle weight
// ------------------------------------------------------------------------------------

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Peak resident memory of a process (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    proc_field(pid, "status", "VmHWM:") as f64 / 1024.0
}

fn idle(table: &mut Table) {
    const WINDOW: u64 = 60;
    eprintln!("idle: {WINDOW} s…");
    // Everything runs side by side, in the same minute.
    let dir = webapp(false);
    let port = free_port();
    let mut h = hotrun(dir.path())
        .args(&["--proxy", &port.to_string()])
        .start();
    h.wait("app_ready");
    let mut running: Vec<(String, u32, Peer, TempDir)> = Vec::new();
    for (name, _, argv) in peers() {
        let dir = webapp(false);
        let port = free_port();
        let argv = argv_for(&argv, port);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let peer = Peer::start(dir.path(), port, &argv);
        wait_serving(port, "v1", name);
        running.push((name.to_string(), peer.pid(), peer, dir));
    }
    // Settled: the first build's aftermath is not idle time.
    std::thread::sleep(Duration::from_secs(2));
    let before_hotrun = cpu_seconds(h.pid());
    let before: Vec<f64> = running.iter().map(|r| cpu_seconds(r.1)).collect();
    std::thread::sleep(Duration::from_secs(WINDOW));
    let hotrun_cpu = (cpu_seconds(h.pid()) - before_hotrun) / WINDOW as f64 * 100.0;
    table.row(
        &format!("idle CPU over {WINDOW} s, app running"),
        "hotrun, proxy",
        format!("{hotrun_cpu:.3} %"),
        "< 0.1 %",
        format!("peak RSS {:.1} MB (target < 20 MB)", peak_rss_mb(h.pid())),
    );
    for ((name, pid, _, _), before) in running.iter().zip(before) {
        let cpu = (cpu_seconds(*pid) - before) / WINDOW as f64 * 100.0;
        table.row(
            &format!("idle CPU over {WINDOW} s, app running"),
            name,
            format!("{cpu:.3} %"),
            "—",
            format!("peak RSS {:.1} MB (the watcher process)", peak_rss_mb(*pid)),
        );
    }
}

// ------------------------------------------------------------------------------------
// Scale: a big tree, a storm
// ------------------------------------------------------------------------------------

/// Write `count` small files spread over `dirs` directories under `root`.
fn make_files(root: &Path, dirs: usize, count: usize, ext: &str) {
    let per = count / dirs;
    for d in 0..dirs {
        let dir = root.join(format!("d{d:05}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..per {
            std::fs::write(dir.join(format!("f{f:03}.{ext}")), "// 0\n").unwrap();
        }
    }
}

/// How many inotify watches a process holds (its inotify fds' `fdinfo`).
fn inotify_watches(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    fds.flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

fn big_tree(table: &mut Table) {
    eprintln!("big tree: writing 300,000 files…");
    let dir = TempDir::new();
    let root = dir.path();
    write(
        &root.join("Cargo.toml"),
        "[package]\nname = \"big\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(
        &root.join("src/main.rs"),
        "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(100_000));\n}\n",
    );
    let made = Instant::now();
    make_files(&root.join("src/tree"), 5_000, 50_000, "rs");
    make_files(&root.join("target/junk"), 2_000, 200_000, "o");
    make_files(&root.join("node_modules"), 500, 50_000, "js");
    eprintln!("  written in {:.0} s", made.elapsed().as_secs_f64());
    // One build first, so the timed starts measure watching, not compiling.
    Command::new("cargo")
        .args(["build", "--quiet"])
        .current_dir(root)
        .status()
        .unwrap();

    let (mut watching, mut watches, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let start = Instant::now();
        let mut h = hotrun(root).start();
        let event = h.wait("watching");
        watching.push(start.elapsed().as_secs_f64() * 1000.0);
        let _ = event;
        h.wait("app_started");
        watches.push(inotify_watches(h.pid()) as f64);
        rss.push(peak_rss_mb(h.pid()));
        drop(h);
    }
    table.row(
        "big tree: start → `watching` (50k sources in 5k dirs, `target/` 200k, `node_modules/` 50k)",
        "hotrun",
        ms(&watching),
        "≤ 2 s",
        format!(
            "{:.0} OS watches (the 5,002 source directories); peak RSS {:.1} MB",
            median(&watches),
            median(&rss)
        ),
    );

    // The storm: 10,000 sources changed at once.
    let mut h = hotrun(root).start();
    h.wait("app_started");
    std::thread::sleep(Duration::from_millis(500));
    let from = h.cursor();
    let storm = Instant::now();
    for d in 0..1_000 {
        for f in 0..10 {
            std::fs::write(
                root.join(format!("src/tree/d{d:05}/f{f:03}.rs")),
                "// storm\n",
            )
            .unwrap();
        }
    }
    let written = storm.elapsed().as_secs_f64();
    h.wait("build_finished");
    // Quiet for 3 s: nothing more is coming.
    std::thread::sleep(Duration::from_secs(3));
    let builds = h
        .events_since(from)
        .iter()
        .filter(|e| e["event"] == "build_started")
        .count();
    table.row(
        "storm: 10,000 sources written at once → `build_started`",
        "hotrun",
        format!("{builds}"),
        "exactly 1",
        format!(
            "the 10,000 writes took {written:.1} s on this disk (the settle window's cap is 1 s)"
        ),
    );
}

// ------------------------------------------------------------------------------------
// Abuse: an app that writes as fast as it can
// ------------------------------------------------------------------------------------

/// `yes` with a 100-byte line, for `FLOOD_FOR`, with the runner's stdout to /dev/null
/// (a fast reader) and to a pipe nobody reads (a stuck one); then SIGTERM.
fn flood(table: &mut Table) {
    const FLOOD_FOR: Duration = Duration::from_secs(5);
    let line = "a".repeat(100);
    let mut runners: Vec<(&str, Vec<String>)> = vec![(
        "hotrun",
        vec![
            hotrun_bin().display().to_string(),
            "--ui".into(),
            "json".into(),
            "--no-reload".into(),
            "--build-cmd".into(),
            "true".into(),
            "--run-cmd".into(),
            format!("yes {line}"),
        ],
    )];
    if installed("watchexec") {
        runners.push((
            "watchexec",
            vec![
                "watchexec".into(),
                "--restart".into(),
                "--".into(),
                "yes".into(),
                line.clone(),
            ],
        ));
    }
    for (name, argv) in runners {
        for stuck in [false, true] {
            eprintln!(
                "flood: {name}, stdout {}…",
                if stuck { "stuck" } else { "read" }
            );
            let (mut rss, mut exits, mut rates) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                let dir = TempDir::new();
                let mut child = Command::new(&argv[0])
                    .args(&argv[1..])
                    .current_dir(dir.path())
                    .stdin(Stdio::null())
                    .stdout(if stuck { Stdio::piped() } else { Stdio::null() })
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let _unread = child.stdout.take();
                let app = app_under(child.id(), "yes");
                let since = Instant::now();
                std::thread::sleep(FLOOD_FOR);
                let written = proc_field(app, "io", "wchar:") as f64;
                rates.push(written / 1e6 / since.elapsed().as_secs_f64());
                rss.push(peak_rss_mb(child.id()));
                let asked = Instant::now();
                // SAFETY: kill(2) on the runner this benchmark started.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                loop {
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                    if asked.elapsed() > Duration::from_secs(30) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                exits.push(asked.elapsed().as_secs_f64() * 1000.0);
                // SAFETY: the app may outlive a runner that was killed.
                unsafe { libc::kill(app as i32, libc::SIGKILL) };
            }
            let how = if stuck {
                "a pipe nobody reads"
            } else {
                "/dev/null"
            };
            table.row(
                &format!("output flood, stdout to {how}: peak RSS"),
                name,
                format!("{:.1} MB", median(&rss)),
                if name == "hotrun" { "< 64 MB" } else { "—" },
                format!(
                    "the app wrote {:.0} MB/s; SIGTERM → exit {}",
                    median(&rates),
                    ms(&exits)
                ),
            );
        }
    }
}
