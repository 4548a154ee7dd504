//! Processes, as /proc shows them: whether one lives, its descendants, its fields.

use std::time::{Duration, Instant};

use crate::{Hotrun, DEADLINE};

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Wait until `pid` is gone (dead and reaped, or at least dead).
pub fn wait_gone(pid: u32, what: &str, hotrun: &Hotrun) {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(30) {
            hotrun.fail(&format!("{what} (pid {pid}) is still alive"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of every process now.
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// Every process whose parent chain leads to `root`, with its state letter.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parents = Vec::new();
    for pid in pids() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("").to_string();
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        parents.push((pid, ppid, state));
    }
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, state) in &parents {
            if *ppid == p {
                found.push((*pid, state.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

pub fn assert_no_zombies(hotrun: &Hotrun) {
    let zombies: Vec<_> = descendants(hotrun.pid())
        .into_iter()
        .filter(|(_, s)| s == "Z")
        .collect();
    if !zombies.is_empty() {
        hotrun.fail(&format!("zombie processes under hotrun: {zombies:?}"));
    }
}

/// The first descendant of `root` whose command name is `name`, once there is one: its
/// pid (an app under hotrun's helper, say).
pub fn app_under(root: u32, name: &str) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = descendants(root).into_iter().map(|(p, _)| p).find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == name)
        }) {
            return pid;
        }
        assert!(start.elapsed() < DEADLINE, "no `{name}` under pid {root}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number after `field` (`VmRSS:`, `wchar:`) in `/proc/PID/FILE`; 0 when there is
/// none.
pub fn proc_field(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
