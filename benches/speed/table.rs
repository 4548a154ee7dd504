//! The table the benchmark prints, and the figures in it: medians with min–max.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    pub fn row(&mut self, what: &str, who: &str, figure: String, target: &str, note: String) {
        eprintln!("  {what} | {who} | {figure} | {note}");
        self.rows
            .push([what.into(), who.into(), figure, target.into(), note]);
    }

    pub fn print(&self) {
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

pub fn ms(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    let (m, lo, hi) = stats(values);
    format!("{m:.0} ms ({lo:.0}–{hi:.0})")
}

pub fn ms1(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    let (m, lo, hi) = stats(values);
    format!("{m:.1} ms ({lo:.1}–{hi:.1})")
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        stats(values).0
    }
}

pub fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

pub fn machine() -> String {
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
