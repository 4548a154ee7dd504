//! hotrun's benchmark: every speed, weight and scale figure the README gives,
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
//!
//! Only the swaps of an app that takes 1.5 s to start (the longest request a client
//! waits, hotrun's blue-green swaps beside the peers' stop-then-start):
//!
//! ```sh
//! HOTRUN_BENCH_ONLY=slow-start cargo bench --bench speed
//! ```
//!
//! One file per part: `reaction`, `swaps`, `browser` (with the Vite comparison), `idle`,
//! `scale` (the big tree and the storm) and `flood`; `table` prints the figures,
//! `fixtures` and `peers` are what the rows run. What the benchmark shares with the
//! integration tests (hotrun in `--ui json`, HTTP clients, the browser driver) is the
//! `hotrun-support` crate in `tests/support`.

mod browser;
mod fixtures;
mod flood;
mod idle;
mod peers;
mod reaction;
mod scale;
mod swaps;
mod table;

use std::time::Instant;

use browser::EDITS;
use table::{machine, Table};

/// Repetitions per row (the big tree and the storm run fewer: they take long).
pub const REPS: usize = 5;

fn main() {
    let started = Instant::now();
    let only = std::env::var("HOTRUN_BENCH_ONLY").unwrap_or_default();
    assert!(
        matches!(only.as_str(), "" | "browser" | "flood" | "slow-start"),
        "HOTRUN_BENCH_ONLY={only}: the parts that run alone are `browser`, `flood` and `slow-start`"
    );
    let everything = only.is_empty();
    let mut table = Table::default();
    eprintln!("hotrun benchmark: this takes several minutes");
    if everything {
        reaction::reaction(&mut table);
        for slow in [false, true] {
            swaps::swaps(&mut table, slow);
        }
    }
    if everything || only == "slow-start" {
        swaps::slow_start(&mut table);
    }
    if everything || only == "browser" {
        browser::browser_rows(&mut table);
        browser::side_by_side(&mut table);
    }
    if everything {
        idle::idle(&mut table);
        scale::big_tree(&mut table);
    }
    if everything || only == "flood" {
        flood::flood(&mut table);
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
