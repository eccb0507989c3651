//! The terminal while the dashboard owns it (raw mode, the alternate screen, a hidden cursor), and
//! every way out that puts it back as it was.
//!
//! - Quitting (`q`, `Esc`, Ctrl-C as a key): [`Session`]'s drop restores it.
//! - SIGTERM, SIGHUP, SIGINT: a watcher thread records the signal ([`received`]); the event loop sees it
//!   within one refresh interval, leaves, restores the terminal, and the process exits with 128 + the
//!   signal's number (143, 129, 130), as a shell reports a process killed by it. If the loop has not
//!   restored the terminal [`SIGNAL_GRACE`] later, or a second signal arrives, the watcher restores it
//!   itself and exits with that status.
//! - A panic on the UI thread: the panic hook restores the terminal before the panic message is printed,
//!   so the message lands on the normal screen (exit status 101, Rust's for a panic). A panic on another
//!   thread leaves the screen to the UI thread, which is still drawing.
//!
//! Restoring is idempotent ([`restore`]): whichever path comes first does it, the others find nothing to
//! do. SIGKILL cannot be caught; `reset` or `stty sane` repairs a terminal after one.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::DefaultTerminal;
use ratatui::backend::CrosstermBackend;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Whether the terminal is in the dashboard's state and needs restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The termination signal received, 0 while none has been.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The thread that draws: only its panics take the terminal back.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
static PANIC_HOOK: Once = Once::new();

/// How long after a termination signal the watcher waits for the event loop to restore the terminal
/// before doing it itself: a loop stuck for longer than this is not coming back.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(3);

/// The dashboard's hold on the terminal; dropping it restores the terminal.
pub struct Session {
    /// The ratatui terminal to draw on.
    pub terminal: DefaultTerminal,
}

impl Session {
    /// Raw mode, the alternate screen, and the panic hook. Call on the UI thread.
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let terminal = execute!(io::stdout(), EnterAlternateScreen)
            .and_then(|()| ratatui::Terminal::new(CrosstermBackend::new(io::stdout())));
        match terminal {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back (raw mode off, the normal screen, the cursor shown) if the dashboard had
/// it. Errors are ignored: after a hangup there is no terminal left to restore.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    }
}

/// Starts the thread that watches for SIGTERM, SIGHUP and SIGINT (see the module docs).
pub fn watch_signals() -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if RECEIVED
                    .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    exit_now(signal);
                }
                let _ = std::thread::Builder::new()
                    .name("signal-grace".into())
                    .spawn(move || {
                        std::thread::sleep(SIGNAL_GRACE);
                        if ACTIVE.load(Ordering::SeqCst) {
                            exit_now(signal);
                        }
                    });
            }
        })?;
    Ok(())
}

/// The termination signal received so far, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The exit status a shell reports for a process ended by `signal`: 128 + its number.
pub fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// A line for stderr saying which signal ended the dashboard.
pub fn report(signal: i32) {
    let name = match signal {
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        _ => "a signal",
    };
    // After a hangup stderr may be gone; that is no reason to panic.
    let _ = writeln!(
        io::stderr(),
        "switchyard: {name} received, dashboard closed"
    );
}

/// The watcher's way out when the event loop did not get there: restore, report, exit.
fn exit_now(signal: i32) -> ! {
    restore();
    report(signal);
    std::process::exit(i32::from(exit_status(signal)));
}

/// Chains a hook in front of the current one that restores the terminal when the UI thread panics.
fn install_panic_hook() {
    let _ = UI_THREAD.set(std::thread::current().id());
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if UI_THREAD.get() == Some(&std::thread::current().id()) {
                restore();
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_128_plus_the_signal() {
        assert_eq!(exit_status(SIGTERM), 143);
        assert_eq!(exit_status(SIGHUP), 129);
        assert_eq!(exit_status(SIGINT), 130);
    }
}
