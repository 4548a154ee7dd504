//! The fixture apps the rows run, and the edit that makes a new version.

use std::path::Path;

use hotrun_support::{fixture, write, TempDir};

/// The std-only web app; with `slow`, a build script that sleeps 2 s on every build.
pub fn webapp(slow: bool) -> TempDir {
    let dir = fixture("webapp");
    if slow {
        write(
            &dir.path().join("build.rs"),
            "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(2));\n}\n",
        );
    }
    dir
}

/// Replace the version string the app serves; returns the new one.
pub fn set_version(dir: &Path, n: usize) -> String {
    let main = dir.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    let start = text.find("const VERSION: &str = \"").unwrap() + 23;
    let end = start + text[start..].find('"').unwrap();
    let version = format!("v{n}");
    std::fs::write(
        &main,
        format!("{}{}{}", &text[..start], version, &text[end..]),
    )
    .unwrap();
    version
}
