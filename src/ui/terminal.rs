//! The terminal under the panel: raw mode while the panel shows (for single keys), the
//! panel kept at the bottom by erasing and redrawing its few lines, and everything
//! restored on exit — by `Drop`, and by a panic hook when hotrun panics. No alternate
//! screen: output above the panel stays in the scrollback.

use std::io::{self, Stdout, Write};

use crossterm::{cursor, terminal, QueueableCommand};

pub struct Terminal {
    out: Stdout,
    /// Lines of panel currently on screen (the cursor is at the end of the last).
    drawn: u16,
    restored: bool,
}

impl Terminal {
    pub fn enter() -> io::Result<Terminal> {
        terminal::enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_now();
            previous(info);
        }));
        let mut out = io::stdout();
        out.queue(cursor::Hide)?;
        out.flush()?;
        Ok(Terminal {
            out,
            drawn: 0,
            restored: false,
        })
    }

    pub fn width(&self) -> usize {
        terminal::size().map_or(80, |(w, _)| w as usize)
    }

    fn erase(&mut self) -> io::Result<()> {
        if self.drawn > 0 {
            self.out.queue(cursor::MoveToColumn(0))?;
            if self.drawn > 1 {
                self.out.queue(cursor::MoveUp(self.drawn - 1))?;
            }
            self.out
                .queue(terminal::Clear(terminal::ClearType::FromCursorDown))?;
            self.drawn = 0;
        }
        Ok(())
    }

    /// Print a line above the panel (the panel is drawn again by `draw`).
    pub fn print_line(&mut self, line: &str) -> io::Result<()> {
        self.erase()?;
        // Raw mode does not turn "\n" into "\r\n".
        self.out.write_all(line.replace('\n', "\r\n").as_bytes())?;
        self.out.write_all(b"\r\n")?;
        Ok(())
    }

    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        self.erase()?;
        self.out.write_all(lines.join("\r\n").as_bytes())?;
        self.drawn = lines.len() as u16;
        self.out.flush()
    }

    pub fn clear_screen(&mut self) -> io::Result<()> {
        self.out.queue(terminal::Clear(terminal::ClearType::All))?;
        self.out
            .queue(terminal::Clear(terminal::ClearType::Purge))?;
        self.out.queue(cursor::MoveTo(0, 0))?;
        self.drawn = 0;
        self.out.flush()
    }

    /// Take the panel away and give the terminal back as it was.
    pub fn restore(&mut self) {
        if self.restored {
            return;
        }
        self.restored = true;
        let _ = self.erase();
        let _ = self.out.flush();
        restore_now();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Cooked mode and a visible cursor, from anywhere (the panic hook).
fn restore_now() {
    let _ = terminal::disable_raw_mode();
    let mut out = io::stdout();
    let _ = out.queue(cursor::Show);
    let _ = out.flush();
}

/// Read keys and resizes on a thread of its own and turn them into events.
pub fn read_keys(tx: tokio::sync::mpsc::UnboundedSender<crate::event::Event>) {
    use crate::event::{Command, Event, UiAction};
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
