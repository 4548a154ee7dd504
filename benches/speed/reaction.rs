//! Reaction: a save → `build_started`.

use std::time::{Duration, Instant};

use hotrun_support::{free_port, hotrun, write};

use crate::fixtures::webapp;
use crate::table::{ms1, Table};
use crate::REPS;

pub fn reaction(table: &mut Table) {
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
