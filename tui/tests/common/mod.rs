//! Helpers shared by the end-to-end tests that drive the real binary in tmux.

// Each test target compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod tmux;
