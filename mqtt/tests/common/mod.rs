//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses some of them

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A two-worker tokio runtime for tests that drive blocking clients from the test thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

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
