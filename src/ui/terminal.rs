//! The terminal under the panel: raw mode while the panel shows (for single keys), the
//! panel kept at the bottom by erasing and redrawing its few lines, and everything
//! restored on exit — by `Drop`, and by the panic hook (`install_panic_hook`) when
//! hotrun panics. No alternate screen: output above the panel stays in the scrollback.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crossterm::{cursor, terminal, QueueableCommand};
use unicode_width::UnicodeWidthStr;

/// Raw mode is on (the panic hook must turn it off).
static RAW: AtomicBool = AtomicBool::new(false);
/// Display widths of the panel lines on screen, for erasing them from anywhere.
static DRAWN: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Terminal width when the panel was drawn.
static DRAWN_WIDTH: AtomicUsize = AtomicUsize::new(80);

/// What it writes goes through hotrun's output queue (`ui::out`), never straight to
/// the terminal: a paused terminal never stops the loop.
pub struct Terminal {
    out: Vec<u8>,
    restored: bool,
}

impl Terminal {
    pub fn enter() -> io::Result<Terminal> {
        terminal::enable_raw_mode()?;
        RAW.store(true, Ordering::SeqCst);
        let mut term = Terminal {
            out: Vec::new(),
            restored: false,
        };
        term.out.queue(cursor::Hide)?;
        term.send()?;
        Ok(term)
    }

    /// Queue what was written since the last call, whole (callers asked
    /// `out::fits` first where it matters).
    fn send(&mut self) -> io::Result<()> {
        if super::out::push_whole(std::mem::take(&mut self.out)) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    pub fn width(&self) -> usize {
        terminal::size().map_or(80, |(w, _)| w as usize)
    }

    /// Print a line above the panel (the panel is drawn again by `draw`).
    pub fn print_line(&mut self, line: &str) -> io::Result<()> {
        erase(&mut self.out)?;
        // Raw mode does not turn "\n" into "\r\n".
        self.out.write_all(line.replace('\n', "\r\n").as_bytes())?;
        self.out.write_all(b"\r\n")?;
        self.send()
    }

    /// Draw the panel; `widths` are the display widths of `lines` (without colour).
    pub fn draw(&mut self, lines: &[String], widths: Vec<usize>) -> io::Result<()> {
        erase(&mut self.out)?;
        self.out.write_all(lines.join("\r\n").as_bytes())?;
        *DRAWN.lock().unwrap_or_else(|e| e.into_inner()) = widths;
        DRAWN_WIDTH.store(self.width(), Ordering::SeqCst);
        self.send()
    }

    pub fn clear_screen(&mut self) -> io::Result<()> {
        self.out.queue(terminal::Clear(terminal::ClearType::All))?;
        self.out
            .queue(terminal::Clear(terminal::ClearType::Purge))?;
        self.out.queue(cursor::MoveTo(0, 0))?;
        DRAWN.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.send()
    }

    /// Take the panel away and give the terminal back as it was.
    pub fn restore(&mut self) {
        if !self.restored {
            self.restored = true;
            restore_now();
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Erase the panel on screen. Lines the terminal re-wrapped after a resize take more
/// rows now: count them with the current width.
fn erase(out: &mut impl Write) -> io::Result<()> {
    let mut drawn = DRAWN.lock().unwrap_or_else(|e| e.into_inner());
    if drawn.is_empty() {
        return Ok(());
    }
    let width = terminal::size()
        .map_or(DRAWN_WIDTH.load(Ordering::SeqCst), |(w, _)| w as usize)
        .max(1);
    let rows: usize = drawn.iter().map(|w| w.div_ceil(width).max(1)).sum();
    out.queue(cursor::MoveToColumn(0))?;
    if rows > 1 {
        out.queue(cursor::MoveUp((rows - 1) as u16))?;
    }
    out.queue(terminal::Clear(terminal::ClearType::FromCursorDown))?;
    drawn.clear();
    Ok(())
}

/// The panel erased, cooked mode and a visible cursor, from anywhere. The terminal
/// mode is set at once; the escapes are queued (and written before the exit unless
/// the terminal reads nothing).
fn restore_now() {
    let mut out = Vec::new();
    let _ = erase(&mut out);
    if RAW.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = out.queue(cursor::Show);
    }
    if !out.is_empty() {
        super::out::push_whole(out);
    }
}

/// A panic anywhere (the loop, the watcher, a task) ends hotrun: the terminal is given
/// back first so the message is readable, then the apps' helpers see hotrun go and
/// stop them.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_now();
        super::out::flush(std::time::Duration::from_millis(500));
        previous(info);
        std::process::exit(101);
    }));
}

/// The display width of `text` (wide characters count twice).
pub fn display_width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Read keys and resizes on a thread of its own and turn them into events.
pub fn read_keys(tx: tokio::sync::mpsc::UnboundedSender<crate::core::event::Event>) {
    use crate::core::event::{Command, Event, UiAction};
    use crossterm::event::{read, Event as Term, KeyCode, KeyEventKind, KeyModifiers};
    let _ = std::thread::Builder::new()
        .name("hotrun-keys".into())
        .spawn(move || {
            while let Ok(event) = read() {
                let event = match event {
                    Term::Key(key) if key.kind != KeyEventKind::Release => match key.code {
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                            Event::Command(Command::Quit)
                        }
                        KeyCode::Char('r') => Event::Command(Command::Rebuild),
                        KeyCode::Char('R') => Event::Command(Command::Restart),
                        KeyCode::Char('p') => Event::Command(Command::TogglePause),
                        KeyCode::Char('q') => Event::Command(Command::Quit),
                        KeyCode::Char('c') => Event::Ui(UiAction::Clear),
                        KeyCode::Char('o') => Event::Ui(UiAction::Open),
                        _ => continue,
                    },
                    Term::Resize(..) => Event::Ui(UiAction::Redraw),
                    _ => continue,
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
}
