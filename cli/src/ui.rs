//! Terminal output: progress on stderr, colour only on a TTY, spinners for waits,
//! confirmation prompts on the controlling terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(code: &str, text: &str) -> String {
    if color() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A finished step: `✓ what`.
pub fn done(what: &str) {
    eprintln!("{} {what}", paint("32", "✓"));
}

/// A step that needed nothing: `· what`.
pub fn skipped(what: &str) {
    eprintln!("{} {what}", paint("2", "·"));
}

/// What a dry run would do: `→ what`.
pub fn would(what: &str) {
    eprintln!("{} {what}", paint("36", "→"));
}

/// Waiting for someone with other rights: `… what`.
pub fn pending(what: &str) {
    eprintln!("{} {what}", paint("33", "…"));
}

pub fn failed(what: &str) {
    eprintln!("{} {what}", paint("31", "✗"));
}

pub fn note(what: &str) {
    eprintln!("{} {what}", paint("33", "!"));
}

pub fn heading(what: &str) {
    eprintln!("{}", paint("1", what));
}

pub fn show_diff(title: &str, diff: &str) {
    eprintln!("{}", paint("1", &format!("--- {title}")));
    for line in diff.lines() {
        let colored = match line.as_bytes().first() {
            Some(b'+') => paint("32", line),
            Some(b'-') => paint("31", line),
            Some(b'@') => paint("36", line),
            _ => line.to_owned(),
        };
        eprintln!("{colored}");
    }
}

/// Asks on the controlling terminal; without one the answer is no.
pub fn confirm(question: &str) -> Result<bool> {
    let Some(mut tty) = keyward_proto::tty::open_tty() else {
        return Ok(false);
    };
    write!(tty, "{question} [y/N] ")?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// A spinner on stderr for waits longer than a second (a plain line when not a TTY).
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    message: String,
}

impl Spinner {
    pub fn start(message: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let thread = if std::io::stderr().is_terminal() {
            let stop = stop.clone();
            let msg = message.to_owned();
            Some(std::thread::spawn(move || {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if started.elapsed() > Duration::from_secs(1) {
                        eprint!(
                            "\r{} {msg} ({}s)",
                            frames[i % frames.len()],
                            started.elapsed().as_secs()
                        );
                        let _ = std::io::stderr().flush();
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                eprint!("\r\x1b[2K");
            }))
        } else {
            eprintln!("… {message}");
            None
        };
        Self {
            stop,
            thread,
            started,
            message: message.to_owned(),
        }
    }

    pub fn finish(mut self, outcome: &str) {
        self.halt();
        done(&format!(
            "{outcome} ({:.1}s)",
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// Stops without a line of its own (the caller reports the outcome).
    pub fn clear(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.halt();
            note(&format!("{} stopped", self.message));
        }
    }
}

/// A QR code of `data`, drawn with half blocks.
pub fn qr(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
        Err(_) => String::from("(too long for a QR code)"),
    }
}
