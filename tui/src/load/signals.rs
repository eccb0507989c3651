//! SIGINT / SIGTERM: the first one ends the run early (it still drains, reports and writes its JSON);
//! a second one exits at once, for a run whose drain is stuck.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the handler once per process (scenario runs call this repeatedly). Failing to install it
/// only loses the graceful stop, so it is reported, not fatal.
pub fn install() {
    INSTALL.call_once(|| {
        let result = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nswitchyard load: second signal, exiting without a report");
                std::process::exit(130);
            }
        });
        if let Err(e) = result {
            eprintln!("switchyard load: warning: cannot handle Ctrl-C gracefully: {e}");
        }
    });
}

/// Whether a signal asked the run to end.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps for `duration`, or less if a signal asks the run to end (checked every 50 ms).
pub fn sleep_unless_interrupted(duration: std::time::Duration) {
    let deadline = std::time::Instant::now() + duration;
    while !interrupted() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
}
