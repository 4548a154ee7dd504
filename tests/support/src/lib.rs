//! What hotrun's integration tests (`tests/integration`) and its benchmark
//! (`benches/speed`) share, in one place: fixture projects copied into temp dirs, the
//! real hotrun binary run in `--ui json`, waits on observable facts (a JSON event, an
//! HTTP answer, a file, a process) with deadlines, small HTTP, websocket and
//! Server-Sent Events clients, and a headless Chromium driven over the DevTools
//! protocol. On a failed wait the command, directory, stdout and stderr are dumped.
//!
//! The most used items are at the root (`use hotrun_support::*`); the clients and the
//! browser are in their modules.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub mod browser;
pub mod clients;
pub mod http;
pub mod process;
pub mod project;
pub mod reload;
pub mod runner;
pub mod saves;

pub use http::{free_port, http_get, wait_http};
pub use process::*;
pub use project::*;
pub use runner::*;

/// Generous: builds on a loaded two-core machine can be slow. Tests wait on facts, so
/// a long deadline costs nothing when things work.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The hotrun binary cargo built for the running test or bench: a test executable is
/// `target/<profile>/deps/NAME-HASH`, the binary `target/<profile>/hotrun`.
pub fn hotrun_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the path of the running executable");
        let mut dir = exe.parent().expect("the executable's directory");
        if dir.ends_with("deps") {
            dir = dir.parent().expect("the profile directory above deps/");
        }
        let bin = dir.join(format!("hotrun{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "no hotrun binary at {} (cargo builds it beside the tests and benches \
             of its package)",
            bin.display()
        );
        bin
    })
}

/// `tests/fixtures`: the fixture projects.
pub fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"))
}
