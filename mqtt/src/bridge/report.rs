//! The bridge's state as one line of text, told to whoever asked ([`super::Bridge::report_changes`])
//! once per change: a remote refusing the connection every few seconds is one line, not one per retry.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::lock::lock;

type Report = Box<dyn Fn(&str) + Send + Sync>;

/// The current state line and who hears of its changes.
#[derive(Default)]
pub(super) struct StateLine {
    inner: Mutex<Inner>,
    /// Woken at each change (the `$SYS` publisher waits on it).
    pub changed: Notify,
}

#[derive(Default)]
struct Inner {
    line: Option<String>,
    report: Option<Report>,
}

impl StateLine {
    /// Sets the state; a line different from the last one is reported.
    pub fn set(&self, line: String) {
        let mut inner = lock(&self.inner);
        if inner.line.as_deref() == Some(line.as_str()) {
            return;
        }
        if let Some(report) = &inner.report {
            report(&line);
        }
        inner.line = Some(line);
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Reports the state now, if there is one yet, and every change from now on.
    pub fn report_to(&self, report: Report) {
        let mut inner = lock(&self.inner);
        if let Some(line) = &inner.line {
            report(line);
        }
        inner.report = Some(report);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_repeated_state_is_reported_once_and_the_state_before_reporting_began_at_once() {
        let state = StateLine::default();
        state.set("down: refused".into());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        state.report_to(Box::new(move |line| lock(&sink).push(line.to_string())));
        for line in [
            "down: refused",
            "down: refused",
            "connected",
            "down: refused",
        ] {
            state.set(line.into());
        }
        assert_eq!(
            *lock(&heard),
            ["down: refused", "connected", "down: refused"]
        );
    }
}
