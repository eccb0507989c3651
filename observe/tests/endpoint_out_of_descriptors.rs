//! Out of file descriptors, the endpoint counts the failed accepts, closes its oldest idle connection
//! and goes on accepting, so a real request is still answered (issue 18, row 7, the HTTP part).
//!
//! Alone in its own test binary: it lowers this process's descriptor limit while a `python3` child
//! opens 300 idle connections, then raises it again and asks with `curl` (spawning needs descriptors of
//! this process too).

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use switchyard::Broker;
use switchyard_observe::{Client, ServeOptions, StatsParams, serve};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const HOLD_IDLE: &str = "
import socket, sys, time
socks = []
for _ in range(300):
    try:
        socks.append(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=1))
    except OSError:
        break
print(len(socks), flush=True)
time.sleep(20)
";

#[test]
fn out_of_descriptors_the_endpoint_recovers_and_answers() {
    let broker = Broker::new();
    let h = serve(
        &broker,
        ServeOptions::default().addr("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let stats_client = Client::new(&h.local_addr().to_string()).unwrap();
    let used = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let old = getrlimit(Resource::Nofile);
    // Room for a few connections only: fewer than the idle ones held, fewer than the pending bound.
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(used + 8),
            maximum: old.maximum,
        },
    )
    .unwrap();
    let mut idle = Killed(
        // Children inherit the low limit: raise theirs back.
        Command::new("sh")
            .args(["-c", "ulimit -n 1024 && exec python3 -c \"$0\" \"$1\""])
            .args([HOLD_IDLE, &h.local_addr().port().to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs"),
    );
    let mut held = String::new();
    BufReader::new(idle.0.stdout.take().unwrap())
        .read_line(&mut held)
        .unwrap();
    assert!(held.trim().parse::<u32>().unwrap() >= 50, "{held}");
    // The server has run out of descriptors by now (it is at its limit with hundreds waiting). The
    // limit goes back before curl starts, since spawning it needs descriptors of this process too.
    std::thread::sleep(Duration::from_millis(300));
    setrlimit(Resource::Nofile, old).unwrap();
    let out = Command::new("sh")
        .args(["-c", "ulimit -n 1024 && exec curl -sS -m 3 \"$0\""])
        .arg(format!("http://{}/healthz", h.local_addr()))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    let endpoint = stats_client
        .with_timeout(Duration::from_secs(5))
        .stats(&StatsParams::default())
        .unwrap()
        .endpoint;
    assert!(endpoint.accept_errors >= 1, "{endpoint:?}");
    assert!(endpoint.idle_closed >= 1, "{endpoint:?}");
}
