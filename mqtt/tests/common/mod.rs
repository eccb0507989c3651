//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses some of them

/// A two-worker tokio runtime for tests that drive blocking clients from the test thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[path = "../../../tests/support/process.rs"]
mod process;
#[allow(unused_imports)] // as dead_code above: not every test file waits for a child
pub use process::wait_or_kill;
