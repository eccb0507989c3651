//! Who may connect: the password file ([`PasswordFile`]) and the delay that slows down failed attempts
//! from one address ([`FailureDelays`]).
//!
//! With a password file every CONNECT must carry a user name and the right password, whatever address
//! it comes from (loopback included): no user name is refused with CONNACK 5 (not authorized), an
//! unknown user or a wrong password with CONNACK 4 (bad user name or password), as MQTT 3.1.1 section
//! 3.2.2.3 says. Both are counted (`auth` in [`crate::MqttStats`]). Unknown users and wrong passwords
//! share one counter and one code, and cost the same time, so neither tells which users exist.
//!
//! What a client may do once connected: the ACL file ([`AclFile`], Mosquitto's format), compiled per
//! connection and cached ([`Permissions`]). Both files are read again on a reload ([`AccessFiles`]),
//! which swaps the rules in force ([`Access`]) without closing a connection.

mod access;
mod acl;
mod password_file;
mod permissions;
mod reload;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) use access::{Access, Refusal};
pub use access::{AclRefusedByReason, AclStats, ReloadStats};
pub(crate) use acl::ReadClass;
pub use acl::{AclFile, AclFileError};
pub use password_file::{
    DEFAULT_ITERATIONS, PasswordFile, PasswordFileError, PasswordHash, SALT_LEN,
};
pub(crate) use permissions::{ClientRead, Permissions, rules};
pub(crate) use reload::reload;
pub use reload::{AccessFiles, ReloadError, Reloaded};

/// The delay before the CONNACK of the first failed attempt from an address; it doubles with each
/// further failure, up to [`DELAY_MAX`].
pub const DELAY_FIRST: Duration = Duration::from_millis(100);
/// The longest delay before a refusing CONNACK.
pub const DELAY_MAX: Duration = Duration::from_secs(2);
/// An address that has not failed for this long starts again at [`DELAY_FIRST`].
pub const DELAY_FORGET: Duration = Duration::from_secs(60);
/// Addresses remembered at once; one more forgets the one that failed longest ago (counted).
pub const DELAY_ADDRESSES: usize = 4096;

struct Strikes {
    failures: u32,
    last: Instant,
}

/// Failed attempts by address, bounded to [`DELAY_ADDRESSES`] entries.
#[derive(Default)]
pub(crate) struct FailureDelays {
    map: Mutex<HashMap<IpAddr, Strikes>>,
}

/// What [`FailureDelays::fail`] decided.
pub(crate) struct Delay {
    /// How long to wait before the refusing CONNACK.
    pub wait: Duration,
    /// Whether another address was forgotten to make room.
    pub evicted: bool,
}

impl FailureDelays {
    /// Records a failure from `ip` at `now` and returns the delay before its CONNACK.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Delay {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = false;
        if !map.contains_key(&ip) && map.len() >= DELAY_ADDRESSES {
            // Expired entries first; else the one that failed longest ago.
            map.retain(|_, s| now.duration_since(s.last) < DELAY_FORGET);
            if map.len() >= DELAY_ADDRESSES
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last).map(|(ip, _)| *ip)
            {
                map.remove(&oldest);
                evicted = true;
            }
        }
        let strikes = map.entry(ip).or_insert(Strikes {
            failures: 0,
            last: now,
        });
        if now.duration_since(strikes.last) >= DELAY_FORGET {
            strikes.failures = 0;
        }
        strikes.failures = strikes.failures.saturating_add(1);
        strikes.last = now;
        let wait = DELAY_FIRST
            .saturating_mul(1u32 << (strikes.failures - 1).min(16))
            .min(DELAY_MAX);
        Delay { wait, evicted }
    }

    /// Forgets `ip`'s failures: it logged in.
    pub fn succeed(&self, ip: IpAddr) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&ip);
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_to_its_bound_and_is_forgotten_after_a_while() {
        let delays = FailureDelays::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        let waits: Vec<u64> = (0..8)
            .map(|i| {
                delays
                    .fail(ip, t0 + Duration::from_secs(i))
                    .wait
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(delays.fail(other, t0).wait, DELAY_FIRST);
        let later = t0 + Duration::from_secs(8) + DELAY_FORGET;
        assert_eq!(delays.fail(ip, later).wait, DELAY_FIRST);
        delays.succeed(ip);
        assert_eq!(delays.len(), 1);
    }

    #[test]
    fn the_map_is_bounded_and_counts_what_it_forgets() {
        let delays = FailureDelays::default();
        let t0 = Instant::now();
        let mut evicted = 0;
        for i in 0..(DELAY_ADDRESSES as u32 + 10) {
            let ip = IpAddr::from(i.to_be_bytes());
            if delays
                .fail(ip, t0 + Duration::from_millis(u64::from(i)))
                .evicted
            {
                evicted += 1;
            }
        }
        assert_eq!(delays.len(), DELAY_ADDRESSES);
        assert_eq!(evicted, 10);
    }
}
