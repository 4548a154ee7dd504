//! systemd's readiness protocol, for apps on the `run.listen` sockets: hotrun binds a
//! datagram socket per generation and passes its path as `NOTIFY_SOCKET`; the app sends
//! `READY=1` there once it serves (`sd_notify`, the `sd-notify` crate, Go's
//! `go-systemd/daemon`). Generations share one listening socket, so only the app can say
//! which of them is ready.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::sync::mpsc::UnboundedSender;

use crate::core::event::Event;

/// Largest notification read; the protocol's messages are a few short lines.
const MESSAGE_MAX: usize = 4096;

/// How often a listener looks whether its generation is gone.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A bound notification socket, waiting for its generation to start.
pub struct Notify {
    pub path: PathBuf,
    socket: UnixDatagram,
}

impl Notify {
    /// A socket for generation `gen` in hotrun's runtime directory.
    pub fn bind(gen: u64) -> std::io::Result<Notify> {
        // A directory of hotrun's own, that only its user may enter.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("hotrun-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(format!("{gen}.notify"));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)?;
        Ok(Notify { path, socket })
    }

    /// Say `AppNotified` the first time the app sends `READY=1`; stop once `reaped`
    /// (its helper is gone), and remove the socket.
    pub fn listen(self, gen: u64, reaped: Arc<AtomicBool>, tx: UnboundedSender<Event>) {
        tokio::spawn(async move {
            let mut buf = vec![0u8; MESSAGE_MAX];
            let mut said = false;
            while !reaped.load(Ordering::SeqCst) {
                let n = match tokio::time::timeout(CHECK_EVERY, self.socket.recv(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) => {
                        // Not a message (the socket failed): look again later.
                        tokio::time::sleep(CHECK_EVERY).await;
                        continue;
                    }
                    Err(_) => continue,
                };
                let ready = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l.trim() == "READY=1");
                if ready && !said {
                    said = true;
                    if tx.send(Event::AppNotified { gen }).is_err() {
                        break;
                    }
                }
            }
        });
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // The directory too, once no other generation's socket is in it.
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
