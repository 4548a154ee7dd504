//! Abuse: an app that writes as fast as it can, under hotrun and under watchexec:
//! memory, and how long SIGTERM takes, with the output read and with it stuck.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotrun_support::{app_under, hotrun_bin, proc_field, TempDir};

use crate::idle::peak_rss_mb;
use crate::peers::installed;
use crate::table::{median, ms, Table};

/// `yes` with a 100-byte line, for `FLOOD_FOR`, with the runner's stdout to /dev/null
/// (a fast reader) and to a pipe nobody reads (a stuck one); then SIGTERM.
pub fn flood(table: &mut Table) {
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
