//! Child processes in tests: killed when the test ends, or waited for with a bound. Shared by the test crates of the workspace (each includes
//! this file with `#[path]`; a test-only crate would be more machinery than one function).

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits up to `limit` for `child` to exit, then kills it (by its pid); returns its status.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (by its pid) when the test ends, also when it fails: an orphan would keep
/// the test harness's pipes open.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
