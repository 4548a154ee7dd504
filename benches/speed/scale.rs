//! Scale: a big tree (start → `watching`, OS watches, memory) and a storm of 10,000
//! writes at once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hotrun_support::{hotrun, write, TempDir};

use crate::idle::peak_rss_mb;
use crate::table::{median, ms, Table};

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

pub fn big_tree(table: &mut Table) {
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
