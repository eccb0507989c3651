//! Waiting for a child process with a bound, shared by the test crates of the workspace (each includes
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
