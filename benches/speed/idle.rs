//! Idle weight: CPU over a quiet minute and peak memory, hotrun and the peers side by
//! side.

use std::time::Duration;

use hotrun_support::{free_port, hotrun, proc_field, TempDir};

use crate::fixtures::webapp;
use crate::peers::{peers, Peer};
use crate::table::Table;

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
pub fn peak_rss_mb(pid: u32) -> f64 {
    proc_field(pid, "status", "VmHWM:") as f64 / 1024.0
}

pub fn idle(table: &mut Table) {
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
        let peer = Peer::serving(dir.path(), free_port(), name, &argv);
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
