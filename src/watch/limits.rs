//! The OS's limits on watching (inotify watches and instances): how to tell one is
//! hit, and the one message that names the sysctl raising it.

use crate::config::settings::DEFAULT_POLL;

/// A hidden knob for tests: behave as if the OS allowed only this many watches
/// (`HOTRUN_TEST_MAX_WATCHES`), or no inotify instance at all (`HOTRUN_TEST_NO_INOTIFY`).
pub fn test_watch_limit() -> Option<usize> {
    std::env::var("HOTRUN_TEST_MAX_WATCHES").ok()?.parse().ok()
}

/// Permission problems and the like: the directory cannot be watched, but that is
/// no reason to stop.
pub fn unwatchable(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::Io(io) => matches!(
            io.raw_os_error(),
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
        ),
        _ => false,
    }
}

pub fn is_limit(e: &notify::Error) -> bool {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => {
            matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE))
        }
        _ => false,
    }
}

/// The one message for a full watch or instance limit: what happened, the sysctl that
/// raises it, and that hotrun goes on polling.
pub fn limit_message(e: &notify::Error, wanted: usize) -> String {
    let instances =
        matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE));
    let (key, suggested) = if instances {
        ("max_user_instances", 1024)
    } else {
        ("max_user_watches", 524288)
    };
    let current = std::fs::read_to_string(format!("/proc/sys/fs/inotify/{key}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let what = if instances {
        "the OS limit on inotify instances is reached".to_string()
    } else {
        format!("the OS limit on inotify watches is reached ({wanted} directories to watch)")
    };
    format!(
        "{what}: fs.inotify.{key} = {current}. Polling every {} instead. Raise it with: sudo sysctl fs.inotify.{key}={suggested}",
        crate::text::format_duration(DEFAULT_POLL)
    )
}
