//! hotrun under abuse: odd file names, a killed helper, blocked output, floods,
//! clients that stop reading, half-sent requests, a deleted project. No crash, no
//! hang, bounded memory, nothing left running.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::support::*;

#[test]
fn file_names_that_are_not_utf8_are_reported_not_fatal() {
    let dir = command_project("[build]\ncmd = \"true\"\n[run]\ncmd = \"sleep 1000\"\n");
    // One such name is there from the start, one comes while hotrun runs.
    let old = dir.path().join(OsStr::from_bytes(b"caf\xe9.go"));
    std::fs::write(&old, "package x").unwrap();
    let mut h = hotrun(dir.path()).start();
    let app = h.wait("app_started");
    let new = dir.path().join(OsStr::from_bytes(b"na\xefve\xff.go"));
    std::fs::write(&new, "package x").unwrap();
    let change = h.wait_for("change", |e| e["paths"].to_string().contains("na"));
    assert_eq!(
        change["paths"][0].as_str().unwrap(),
        new.to_string_lossy(),
        "{change}"
    );
    let raw = data_encoding::BASE64
        .decode(change["paths_base64"][0].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(raw, new.as_os_str().as_bytes(), "{change}");
    h.wait("build_finished");
    std::fs::write(&old, "package y").unwrap();
    h.wait_for("change", |e| e["paths"].to_string().contains("caf"));
    h.wait("build_finished");
    // The app it started first was swapped, not lost: hotrun is still in charge.
    h.wait("app_started");
    assert!(!alive(app["pid"].as_u64().unwrap() as u32));
    h.send("quit");
    assert_eq!(h.wait_exit(), 0);
}
