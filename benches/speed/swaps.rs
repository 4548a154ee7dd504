//! Swaps: a save → the new version served, with a client hammering the app all along;
//! hotrun in each mode, then the peers, beside the fixture's own `cargo build` time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotrun_support::free_port;
use hotrun_support::hotrun;
use hotrun_support::http::{wait_serving, Hammer};

use crate::fixtures::{set_version, webapp};
use crate::peers::{peers, Peer};
use crate::table::{median, ms, Table};
use crate::REPS;

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

/// Swaps of the webapp fixture under hotrun in `mode` (`direct`: the app's own
/// `PORT`; `listen`; `proxy`), and the builds hotrun timed meanwhile (`build_finished`).
fn hotrun_swaps(slow: bool, mode: &str) -> (SwapResult, Vec<f64>) {
    let dir = webapp(slow);
    let port = free_port();
    let b = hotrun(dir.path());
    let b = match mode {
        "direct" => b.port(port),
        "listen" => b.args(&["--listen", &port.to_string()]),
        _ => b.args(&["--proxy", &port.to_string()]),
    };
    let mut h = b.start();
    h.wait("app_ready");
    wait_serving(port, "v1", "hotrun");
    let from = h.cursor();
    let r = measure_swaps(dir.path(), port, 2);
    let builds = h
        .events_since(from)
        .iter()
        .filter(|e| e["event"] == "build_finished")
        .filter_map(|e| e["duration_ms"].as_f64())
        .collect();
    (r, builds)
}

pub fn swaps(table: &mut Table, slow: bool) {
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
        // The build as hotrun timed it, swap by swap: what hotrun adds around it.
        let (r, builds) = hotrun_swaps(slow, mode);
        let served = median(&r.served);
        if mode == "direct" {
            hotrun_direct = served;
        }
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
    }
    for (name, mode, argv) in peers() {
        let dir = webapp(slow);
        let port = free_port();
        let peer = Peer::serving(dir.path(), port, name, &argv);
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

/// How long the slow-starting fixture takes to start (`START_DELAY_MS`).
const START_DELAY_MS: &str = "1500";

/// Swaps of an app that takes 1.5 s to start: the longest request a client waits,
/// hotrun (blue-green: the new app starts beside the old one) beside the peers (which
/// stop the old app, then start the new one).
pub fn slow_start(table: &mut Table) {
    eprintln!("swaps, slow start…");
    // Read by the fixture app at start, inherited through every tool.
    // SAFETY: the benchmark is single-threaded here; nothing reads the environment
    // concurrently.
    unsafe { std::env::set_var("START_DELAY_MS", START_DELAY_MS) };
    let what = "swap of an app that takes 1.5 s to start: longest request";
    for mode in ["listen", "proxy"] {
        let (r, builds) = hotrun_swaps(false, mode);
        table.row(
            what,
            &format!("hotrun, {mode}"),
            ms(&r.longest),
            "well under the 1.5 s start; 0 failed",
            format!(
                "{} failed requests; save → new version served {} (the build {}, then the \
                 start)",
                r.failed,
                ms(&r.served),
                ms(&builds)
            ),
        );
    }
    for (name, mode, argv) in peers() {
        let dir = webapp(false);
        let port = free_port();
        let peer = Peer::serving(dir.path(), port, name, &argv);
        let r = measure_swaps(dir.path(), port, 2);
        table.row(
            what,
            &format!("{name} ({mode})"),
            ms(&r.longest),
            "—",
            format!(
                "{} failed requests; save → new version served {}",
                r.failed,
                ms(&r.served)
            ),
        );
        drop(peer);
    }
    // SAFETY: as above.
    unsafe { std::env::remove_var("START_DELAY_MS") };
}
