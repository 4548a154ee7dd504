//! What runs the app: `run.cmd` through `sh -c` with `exec` in front, or the executable
//! the build named.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use crate::config::settings::Settings;

/// What runs: `run.cmd` through `sh -c` (see [`exec_line`]), else the built
/// executable, with `run.args`. Fails when there is neither, or `run.cwd` is gone.
pub fn command_line(
    settings: &Settings,
    executable: Option<&Path>,
) -> Result<(OsString, Vec<OsString>)> {
    let (program, args): (OsString, Vec<OsString>) = match (&settings.run.cmd, executable) {
        (Some(cmd), _) => {
            let mut args: Vec<OsString> = vec!["-c".into(), exec_line(cmd).into(), "sh".into()];
            args.extend(settings.run.args.iter().map(OsString::from));
            ("sh".into(), args)
        }
        (None, Some(exe)) => (
            exe.as_os_str().to_owned(),
            settings.run.args.iter().map(OsString::from).collect(),
        ),
        (None, None) => anyhow::bail!("nothing to run: no run command and no executable"),
    };
    if !settings.run.cwd.is_dir() {
        anyhow::bail!(
            "the app's directory {} (`run.cwd`, else where hotrun started) is gone",
            settings.run.cwd.display()
        );
    }
    Ok((program, args))
}

/// The `sh -c` script for `run.cmd`: `exec` in front of the command, so the app is the
/// process hotrun signals, with `run.args` appended as `"$@"`. Leading `NAME=value`
/// words stay in front (`APP_ENV=dev exec ./app`). A compound line (`a && b`, a
/// pipeline, a loop) or one starting with a shell builtin is run as written, with
/// the arguments in `$@` for it to use.
pub fn exec_line(cmd: &str) -> String {
    const BUILTINS: &[&str] = &[
        "exec", "cd", "export", "if", "for", "while", "until", "case", "{", "[", "[[", "set",
        "source", ".", "eval", "exit", "trap", "ulimit", "umask", "unset", "wait", "read", "local",
        "alias", "!",
    ];
    let line = cmd.trim();
    // Quoting, expansions and comments need a real shell parser: run those as written.
    if line.contains([
        '&', '|', ';', '\n', '(', ')', '`', '\'', '"', '\\', '$', '#',
    ]) {
        return line.to_string();
    }
    let mut offset = 0;
    for word in line.split_whitespace() {
        let at = offset + line[offset..].find(word).unwrap_or(0);
        offset = at + word.len();
        let is_assignment = word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment {
            continue;
        }
        if BUILTINS.contains(&word) {
            return line.to_string();
        }
        return format!("{}exec {} \"$@\"", &line[..at], &line[at..]);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_commands_get_exec() {
        assert_eq!(exec_line("./build/app --x"), "exec ./build/app --x \"$@\"");
        assert_eq!(
            exec_line("APP_ENV=dev ./main"),
            "APP_ENV=dev exec ./main \"$@\""
        );
        assert_eq!(exec_line("exec ./app"), "exec ./app");
        assert_eq!(exec_line("cd web && ./server"), "cd web && ./server");
        assert_eq!(exec_line("echo hi; sleep 1"), "echo hi; sleep 1");
        assert_eq!(exec_line("export A=1"), "export A=1");
        assert_eq!(
            exec_line("FOO=\"a b\" printenv FOO"),
            "FOO=\"a b\" printenv FOO"
        );
    }
}
