//! Saves as editors and tools really make them: in place, temp file + rename (under
//! the names real tools use), `sed -i`, vim's backup rename, JetBrains' safe write,
//! Emacs' lock and backup files.

use std::path::Path;
use std::process::Command;

use crate::TempDir;

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
