//! The signals `switchyard serve` answers: SIGINT and SIGTERM stop it; SIGHUP reloads the MQTT
//! listener's password and ACL files, as it does for Mosquitto, and serving goes on whatever the
//! reload found.

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Signals caught from the moment it is made (so one that arrives while the listener starts is not
/// lost), answered by [`ServeSignals::serve_until_stopped`].
pub struct ServeSignals {
    signals: Signals,
}

impl ServeSignals {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on.
    pub fn catch() -> anyhow::Result<Self> {
        let signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("installing the SIGINT, SIGTERM and SIGHUP handlers")?;
        Ok(Self { signals })
    }

    /// Calls `on_hangup` for each SIGHUP, and returns at the first SIGINT or SIGTERM.
    pub fn serve_until_stopped(mut self, mut on_hangup: impl FnMut()) {
        for signal in self.signals.forever() {
            if signal == SIGHUP {
                on_hangup();
            } else {
                return;
            }
        }
    }
}
