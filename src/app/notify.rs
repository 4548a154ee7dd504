//! systemd's readiness protocol, for apps on the `run.listen` sockets: hotrun binds a
//! datagram socket per generation and passes its path as `NOTIFY_SOCKET`; the app sends
//! `READY=1` there once it serves (`sd_notify`, the `sd-notify` crate, Go's
//! `go-systemd/daemon`). Generations share one listening socket, so only the app can say
//! which of them is ready.

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
        let dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("hotrun-{}-{gen}.notify", std::process::id()));
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
                let Ok(Ok(n)) = tokio::time::timeout(CHECK_EVERY, self.socket.recv(&mut buf)).await
                else {
                    continue;
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
    }
}
