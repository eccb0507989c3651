//! The event source: key presses and resizes from the terminal, and a tick at a fixed rate.
//!
//! `next` waits in `crossterm::event::poll` until the next tick is due, so an idle dashboard sleeps
//! between ticks instead of spinning; the tick is when stats are sampled and the screen redrawn.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as CrosstermEvent, KeyEvent, KeyEventKind};

/// What the main loop reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time to sample stats and redraw.
    Tick,
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal changed size; redraw.
    Resize,
}

/// Terminal events interleaved with ticks every `tick`.
#[derive(Debug)]
pub struct Events {
    tick: Duration,
    next_tick: Instant,
}

impl Events {
    /// Ticks every `tick`, the first one at once.
    pub fn new(tick: Duration) -> Self {
        Self {
            tick,
            next_tick: Instant::now(),
        }
    }

    /// Waits for the next event.
    pub fn next(&mut self) -> io::Result<Event> {
        loop {
            let now = Instant::now();
            if now >= self.next_tick {
                self.next_tick += self.tick;
                if self.next_tick <= now {
                    // Skip ticks missed while suspended instead of firing them in a burst.
                    self.next_tick = now + self.tick;
                }
                return Ok(Event::Tick);
            }
            if event::poll(self.next_tick - now)? {
                match event::read()? {
                    CrosstermEvent::Key(key) if key.kind != KeyEventKind::Release => {
                        return Ok(Event::Key(key));
                    }
                    CrosstermEvent::Resize(..) => return Ok(Event::Resize),
                    _ => {}
                }
            }
        }
    }
}
