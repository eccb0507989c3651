//! A tmux server of the test's own, for driving the real `switchyard` binary in real terminals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a wait for the screen or a file may take before the test fails (a failsafe, not a speed
/// requirement).
const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of our own (its own socket), so the test never touches the user's sessions. The
/// first session, `dash`, is the one `send`, `type_text`, `screen` and `wait_for` act on; more can be
/// started with [`Tmux::start_session`] and read with [`Tmux::screen_of`] and [`Tmux::wait_for_in`].
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A server of our own in `dir`, with one detached session `dash` of `width` × `height` running
    /// `sh -c command`.
    pub fn start(dir: &Path, width: u16, height: u16, command: &str) -> Self {
        let tmux = Self::new(dir);
        tmux.start_session("dash", width, height, command);
        tmux
    }

    /// A server of our own in `dir`, with no session yet (the first [`Tmux::start_session`] starts it).
    pub fn new(dir: &Path) -> Self {
        Self {
            socket: dir.join("tmux.sock"),
        }
    }

    /// Another detached session `name` on the same server.
    pub fn start_session(&self, name: &str, width: u16, height: u16, command: &str) {
        let (width, height) = (width.to_string(), height.to_string());
        let out = self.run(&[
            "new-session",
            "-d",
            "-x",
            &width,
            "-y",
            &height,
            "-s",
            name,
            "sh",
            "-c",
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is required for this test (`bash scripts/test.sh` installs it)")
    }

    /// Sends keys (tmux key names) to `dash`.
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Types `text` literally (no key-name interpretation) into `dash`.
    pub fn type_text(&self, text: &str) {
        self.send(&["-l", text]);
    }

    /// The screen of `dash`.
    pub fn screen(&self) -> String {
        self.screen_of("dash")
    }

    /// The screen of session `name`.
    pub fn screen_of(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }

    /// Polls the screen of `dash` until `done` holds; fails after 20 s showing the last screen.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for_in("dash", what, done)
    }

    /// Polls the screen of session `name` until `done` holds; fails after 20 s showing it.
    pub fn wait_for_in(&self, name: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen_of(name);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits until `path` holds text ending in a newline; returns it.
pub fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` holds a line containing `needle`; returns that line.
pub fn wait_for_line(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in {}: {text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails with a clear message when tmux is not installed.
pub fn require_tmux() {
    let found = Command::new("tmux").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "tmux is required for this test (`bash scripts/test.sh` installs it)"
    );
}
