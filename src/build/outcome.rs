//! What a build amounts to: its outcome, the diagnostics hotrun writes itself, and the
//! output kept for them (bounded).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use crate::core::event::{BuildOutcome, Diagnostic, Executable};

pub fn build_outcome(
    ok: bool,
    started: Instant,
    diagnostics: Vec<Diagnostic>,
    executable: Option<Executable>,
) -> BuildOutcome {
    BuildOutcome {
        ok,
        cancelled: false,
        duration: started.elapsed(),
        diagnostics,
        executable,
        input_files: Vec::new(),
        input_dirs: Vec::new(),
    }
}

pub fn plain_error(message: &str) -> Diagnostic {
    Diagnostic {
        level: "error".into(),
        message: message.into(),
        rendered: message.into(),
        file: None,
        line: None,
        column: None,
    }
}

pub fn first_line(text: &str) -> String {
    let plain = crate::text::strip_ansi(text);
    plain
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("build failed")
        .trim()
        .to_string()
}

/// Path, size, mtime and inode of a built executable.
pub fn stamp(path: &Path) -> Option<Executable> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Executable {
        path: path.to_path_buf(),
        size: meta.len(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        inode: meta.ino(),
    })
}

/// A build's output kept for its diagnostics: at most this much (the first errors are
/// what matters).
const TRANSCRIPT_MAX: usize = 1024 * 1024;

/// Append `line` to `text` while it is under [`TRANSCRIPT_MAX`].
pub fn keep(text: &mut String, line: &str) {
    const CUT: &str = "… (more output, not kept)\n";
    if text.len() + line.len() < TRANSCRIPT_MAX {
        text.push_str(line);
        text.push('\n');
    } else if !text.ends_with(CUT) {
        text.push_str(CUT);
    }
}
