//! Saves as editors and tools really make them: in place, temp file + rename (under
//! the names real tools use), `sed -i`, vim's backup rename, JetBrains' safe write,
//! Emacs' lock and backup files. Each is one change of the saved file and nothing
//! else: no reload, build or restart for a temp file that was renamed away, whatever
//! its name — and a `*.tmp` file that stays is a file like any other.

use std::path::{Path, PathBuf};

use serde_json::Value;

use hotrun_support::saves::{all_saves, save, Save};
use hotrun_support::*;

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
    let mut events = h.events_since(mark);
    // The sentinel's own event may carry the change looked for too (one batch): that
    // change is kept, the sentinel left out.
    if let Some(last) = events.pop() {
        let mut rest = last.clone();
        if let Some(paths) = rest["paths"].as_array_mut() {
            paths.retain(|p| p != until.as_str());
            if !paths.is_empty() {
                rest["count"] = Value::from(paths.len());
                events.push(rest);
            }
        }
    }
    events
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
