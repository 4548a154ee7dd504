//! Saves as editors and tools really make them: in place, temp file + rename (under
//! the names real tools use), `sed -i`, vim's backup rename, JetBrains' safe write,
//! Emacs' lock and backup files. Each is one change of the saved file and nothing
//! else: no reload, build or restart for a temp file that was renamed away, whatever
//! its name — and a `*.tmp` file that stays is a file like any other.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// The ways a file gets saved.
#[derive(Debug, Clone, Copy)]
pub enum Save {
    /// Truncate and write the file itself.
    InPlace,
    /// Write `dir/<temp>` and rename it over the file; `temp` names it from the file's
    /// own name (`{}` is replaced by it).
    Rename(&'static str),
    /// A big file on a slow disk: the temp file is written over longer than hotrun's
    /// hold for new files (the pauses stand for the disk), then renamed over the file.
    SlowRename,
    /// `sed -i`, which writes `./sedXXXXXX` and renames it over the file.
    Sed,
    /// vim (`backupcopy=no`): probe with `4913`, rename the file to `name~`, write a
    /// new file, remove the backup.
    Vim,
    /// JetBrains' safe write: `name___jb_tmp___`, the old file renamed to
    /// `name___jb_old___`, the temp renamed into place, the old one removed.
    JetBrains,
    /// Emacs: a lock symlink `.#name`, an auto-save `#name#` removed on save, the
    /// first save's backup `name~` renamed from the original, a new file written.
    Emacs,
}

/// The temp-file names of real tools: write-file-atomic and Zed (`name.<hash>`),
/// mkstemp-style suffixes, hidden `.tmpXXXXXX` files (Qt's QSaveFile, Go's
/// `os.CreateTemp`), and plain `name.tmp`.
pub const RENAMES: &[&str] = &[
    "{}.tmp",
    ".tmp8Xk2qZ",
    "{}.a8Fk2Q",
    "{}.3f9a1c2b",
    ".{}.swx9",
];

pub fn all_saves() -> Vec<Save> {
    let mut saves = vec![
        Save::InPlace,
        Save::SlowRename,
        Save::Sed,
        Save::Vim,
        Save::JetBrains,
        Save::Emacs,
    ];
    saves.extend(RENAMES.iter().map(|r| Save::Rename(r)));
    saves
}

/// Save `text` into `path` the way `how` does.
pub fn save(how: Save, path: &Path, text: &str) {
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let beside = |pattern: &str| dir.join(pattern.replace("{}", name));
    match how {
        Save::InPlace => std::fs::write(path, text).unwrap(),
        Save::Rename(pattern) => {
            let temp = beside(pattern);
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(&temp, path).unwrap();
        }
        Save::SlowRename => {
            use std::io::Write;
            let temp = beside(".{}.partial");
            let mut file = std::fs::File::create(&temp).unwrap();
            let half = text.len() / 2;
            for part in [&text[..half], &text[half..]] {
                file.write_all(part.as_bytes()).unwrap();
                file.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(80));
            }
            drop(file);
            std::fs::rename(&temp, path).unwrap();
        }
        Save::Sed => {
            // `1,$c\` replaces every line with the text: a real sed, through its own
            // temp file. The script lives outside the watched tree.
            let scripts = TempDir::new();
            let script = scripts.path().join("script.sed");
            let body = text.strip_suffix('\n').unwrap_or(text);
            let body = body.replace('\\', "\\\\").replace('\n', "\\\n");
            std::fs::write(&script, format!("1,$c\\\n{body}\n")).unwrap();
            let status = Command::new("sed")
                .arg("-i")
                .arg("-f")
                .arg(&script)
                .arg(path)
                .current_dir(dir)
                .status()
                .unwrap();
            assert!(status.success());
            let written = std::fs::read_to_string(path).unwrap();
            assert_eq!(written.trim_end(), text.trim_end(), "sed wrote {written:?}");
        }
        Save::Vim => {
            let probe = dir.join("4913");
            std::fs::write(&probe, "").unwrap();
            std::fs::remove_file(&probe).unwrap();
            let backup = beside("{}~");
            std::fs::rename(path, &backup).unwrap();
            std::fs::write(path, text).unwrap();
            std::fs::remove_file(&backup).unwrap();
        }
        Save::JetBrains => {
            let temp = beside("{}___jb_tmp___");
            let old = beside("{}___jb_old___");
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(path, &old).unwrap();
            std::fs::rename(&temp, path).unwrap();
            std::fs::remove_file(&old).unwrap();
        }
        Save::Emacs => {
            let lock = beside(".#{}");
            let _ = std::fs::remove_file(&lock);
            std::os::unix::fs::symlink("user@host.1234:1", &lock).unwrap();
            let autosave = beside("#{}#");
            std::fs::write(&autosave, text).unwrap();
            let backup = beside("{}~");
            std::fs::rename(path, &backup).unwrap();
            std::fs::write(path, text).unwrap();
            std::fs::remove_file(&autosave).unwrap();
            std::fs::remove_file(&lock).unwrap();
        }
    }
}

/// A new file, created in place: like every new file, hotrun looks at it only after a
/// short hold, so once its change is seen, every path born before it was decided.
pub fn sentinel(dir: &Path, n: usize, ext: &str) -> PathBuf {
    let path = dir.join(format!("sentinel-{n}.{ext}"));
    std::fs::write(&path, format!("{n}")).unwrap();
    path
}

/// Every `change` event from the cursor up to the one for `until`, which is left out.
pub fn changes_until(h: &mut Hotrun, until: &Path) -> Vec<Value> {
    let mark = h.cursor();
    let until = until.to_str().unwrap().to_string();
    h.wait_for("change", |e| {
        e["paths"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == until.as_str()))
    });
    let events = h.events_since(mark);
    events[..events.len() - 1].to_vec()
}

fn assert_only(h: &Hotrun, events: &[Value], how: Save, path: &Path, kind: &str) {
    let changes: Vec<&Value> = events.iter().filter(|e| e["event"] == "change").collect();
    let expected = path.to_str().unwrap();
    let right = changes.len() == 1
        && changes[0]["kind"] == kind
        && changes[0]["paths"].as_array().unwrap() == &[Value::from(expected)];
    if !right {
        h.fail(&format!(
            "{how:?}: expected one `{kind}` change of {expected}, got {changes:#?}"
        ));
    }
    for e in events {
        let name = e["event"].as_str().unwrap_or("");
        let wrong = match kind {
            "css" | "asset" => matches!(name, "build_started" | "app_started"),
            _ => false,
        };
        if wrong {
            h.fail(&format!("{how:?}: {name} for a {kind} save: {e}"));
        }
    }
}

#[test]
fn every_save_style_of_a_stylesheet_is_one_css_swap_in_a_command_project() {
    // No `watch.include`: every file that is not an asset builds, so a temp file taken
    // for a change would show as a build.
    let dir = command_project("[build]\ncmd = 'true'\n[run]\ncmd = 'sleep 1000'\n");
    let css = dir.path().join("static/style.css");
    write(&css, "body { color: red }\n");
    let mut h = hotrun(dir.path()).start();
    h.wait("app_started");
    let static_dir = dir.path().join("static");
    for (n, how) in all_saves().into_iter().enumerate() {
        save(how, &css, &format!("body {{ color: rgb({n}, 0, 0) }}\n"));
        let mark = sentinel(&static_dir, n, "css");
        let events = changes_until(&mut h, &mark);
        assert_only(&h, &events, how, &css, "css");
    }
    // A `*.tmp` file that stays is a file: created, then edited, each time a change.
    let notes = dir.path().join("static/notes.tmp");
    for (n, text) in ["one", "two"].into_iter().enumerate() {
        save(Save::Rename("{}.part"), &notes, text);
        let mark = sentinel(&static_dir, 100 + n, "css");
        let events = changes_until(&mut h, &mark);
        assert_only(&h, &events, Save::InPlace, &notes, "asset");
        save(Save::InPlace, &notes, &format!("{text} more"));
        let mark = sentinel(&static_dir, 200 + n, "css");
        let events = changes_until(&mut h, &mark);
        assert_only(&h, &events, Save::InPlace, &notes, "asset");
    }
    // And one deleted is a change too: hotrun knew it (after a hold: a file renamed
    // away may be written anew at once, as backup-rename saves do).
    std::fs::remove_file(&notes).unwrap();
    let deleted = h.wait_for("change", |e| e["paths"][0] == notes.to_str().unwrap());
    assert_eq!(deleted["kind"], "asset", "{deleted}");
}

#[test]
fn every_save_style_of_a_source_file_is_one_build_in_a_cargo_project() {
    let app = fixture("webapp");
    let port = free_port();
    let mut h = hotrun(app.path()).port(port).start();
    h.wait("app_ready");
    let main = app.path().join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    for (n, how) in all_saves().into_iter().enumerate() {
        let mark = h.cursor();
        save(
            how,
            &main,
            &source.replace("\"v1\"", &format!("\"v{}\"", n + 2)),
        );
        let started = h.wait("build_started");
        let finished = h.wait("build_finished");
        assert_eq!(finished["ok"], true, "{how:?}: {finished}");
        // A sentinel edit of a doc (no build): everything before it came from the save.
        let doc = sentinel(app.path(), n, "md");
        h.wait_for("change", |e| {
            e["paths"][0].as_str() == Some(doc.to_str().unwrap())
        });
        let events = h.events_since(mark);
        let builds = events
            .iter()
            .filter(|e| e["event"] == "build_started")
            .count();
        assert_eq!(builds, 1, "{how:?}: {events:#?}");
        assert_eq!(
            started["files"],
            serde_json::json!([main.to_str().unwrap()]),
            "{how:?}"
        );
        let changes: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == "change")
            .filter(|e| e["paths"][0].as_str() != Some(doc.to_str().unwrap()))
            .collect();
        assert_eq!(changes.len(), 1, "{how:?}: {changes:#?}");
        assert_eq!(changes[0]["kind"], "build", "{how:?}: {changes:#?}");
        assert_eq!(
            changes[0]["paths"],
            serde_json::json!([main.to_str().unwrap()])
        );
    }
}
