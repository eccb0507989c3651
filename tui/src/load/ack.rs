//! `switchyard load --ack`: acknowledged subscriptions, and receivers that misbehave on purpose.
//!
//! With `--ack` every subscription is acknowledged (at least once, see `docs/delivery.md`) and each
//! receiver has a [`Role`]: most ack each message they take, and the shares asked for nack every
//! message, time out (take messages and never settle them, so they come back after `--ack-wait`), or
//! die (ack a batch but its last message, then drop their handle while holding it: the message goes
//! back at once, and a new receiver takes the dead one's place, as a supervisor restarts a crashed
//! worker). The books must still balance at the end, with what is in flight as a term.
//!
//! # Who misbehaves
//! Receiver `r` of subscription `i` (of `S` subscriptions with `R` receivers each) has rank
//! `(R - 1 - r) × S + i`: the last receiver of every subscription first, then the one before it, and so
//! on, so misbehaving receivers are spread over the subscriptions and every subscription keeps an acking
//! receiver as long as the shares leave one per subscription. The lowest ranks die, the next time out,
//! the next nack (each count is its share of all receivers, rounded, and at least one when the share is
//! above zero), and the rest ack.
//!
//! During the drain at the end every receiver acks what it takes, so the run ends with everything
//! settled that can be: messages a timing-out receiver held come back after `--ack-wait` and are acked
//! then, and the drain waits for them (up to `--ack-wait` and two seconds more).

use std::time::Duration;

use serde::{Serialize, Serializer};
use switchyard::AckOptions;

/// What a receiver does with the messages it takes (outside the drain, where every receiver acks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Acks each message (the plain engines' receivers, whose messages are delivered when taken, are
    /// all of this role).
    #[default]
    Ack,
    /// Nacks each message: it is delivered again at once, to whichever receiver takes next.
    Nack,
    /// Never settles: each message stays in flight until its ack deadline passes.
    TimeOut,
    /// Acks a batch but its last message, then drops its handle holding that one, and is replaced.
    Die,
}

/// `--ack` and its options, as the run uses them; the JSON `load.config.ack` section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AckPlan {
    /// How long a receiver has to settle a delivery.
    #[serde(rename = "ack_wait_ms", serialize_with = "millis")]
    pub ack_wait: Duration,
    /// Deliveries before the dead letters; `null`: no limit.
    pub max_deliveries: Option<u32>,
    /// The window of each subscription.
    pub max_in_flight: u32,
    /// `--nack-share`, from 0 to 1.
    pub nack_share: f64,
    /// `--timeout-share`, from 0 to 1.
    pub timeout_share: f64,
    /// `--die-share`, from 0 to 1.
    pub die_share: f64,
    /// Receivers that nack (from the share, over all receivers).
    pub nacking: u64,
    /// Receivers that time out.
    pub timing_out: u64,
    /// Receivers that die.
    pub dying: u64,
}

impl AckPlan {
    /// The plan for `receivers` receivers in all, with the shares given (each in 0..=1, summing to at
    /// most 1). Dying receivers are counted first, then timing-out ones, then nacking ones, so when
    /// rounding up leaves too few receivers the later roles get fewer.
    pub fn new(options: AckOptions, shares: [f64; 3], receivers: u64) -> Self {
        let [nack_share, timeout_share, die_share] = shares;
        let mut left = receivers;
        let mut take = |share: f64| {
            let n = if share > 0.0 {
                ((receivers as f64 * share).round() as u64).max(1)
            } else {
                0
            };
            let n = n.min(left);
            left -= n;
            n
        };
        let dying = take(die_share);
        let timing_out = take(timeout_share);
        let nacking = take(nack_share);
        Self {
            ack_wait: options.ack_wait,
            max_deliveries: options.max_deliveries,
            max_in_flight: options.max_in_flight,
            nack_share,
            timeout_share,
            die_share,
            nacking,
            timing_out,
            dying,
        }
    }

    /// The library's options for each subscription.
    pub fn options(&self) -> AckOptions {
        let options = AckOptions::new()
            .ack_wait(self.ack_wait)
            .max_in_flight(self.max_in_flight);
        match self.max_deliveries {
            Some(n) => options.max_deliveries(n),
            None => options,
        }
    }

    /// The role of receiver `receiver` (0-based, of `receivers`) of subscription `subscription` (of
    /// `subscriptions`). See the [module docs](self).
    pub fn role(
        &self,
        subscription: u32,
        subscriptions: u32,
        receiver: u32,
        receivers: u32,
    ) -> Role {
        let rank = u64::from(receivers - 1 - receiver) * u64::from(subscriptions)
            + u64::from(subscription);
        if rank < self.dying {
            Role::Die
        } else if rank < self.dying + self.timing_out {
            Role::TimeOut
        } else if rank < self.dying + self.timing_out + self.nacking {
            Role::Nack
        } else {
            Role::Ack
        }
    }

    /// How long the drain waits at most for messages still in flight: their deadline, and two seconds
    /// more for the receive that notices it.
    pub fn drain_wait(&self) -> Duration {
        self.ack_wait + Duration::from_secs(2)
    }
}

/// A share of the receivers: `0.25` or `25%`, from 0 to 1.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let text = s.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(percent) => (percent.trim(), 100.0),
        None => (text, 1.0),
    };
    let share = number
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a share such as 0.1 or 10%"))?
        / scale;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("`{s}` is not between 0 and 1 (0% and 100%)"));
    }
    Ok(share)
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shares: [f64; 3], receivers: u64) -> AckPlan {
        AckPlan::new(AckOptions::new(), shares, receivers)
    }

    #[test]
    fn shares_parse_as_fractions_or_percentages_and_bad_ones_say_why() {
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert_eq!(parse_share("10%"), Ok(0.1));
        assert_eq!(parse_share(" 100 % "), Ok(1.0));
        assert!(parse_share("1.5").unwrap_err().contains("between 0 and 1"));
        assert!(parse_share("-5%").unwrap_err().contains("between 0 and 1"));
        assert!(parse_share("half").unwrap_err().contains("0.1 or 10%"));
    }

    #[test]
    fn counts_round_and_a_share_above_zero_gets_at_least_one() {
        let p = plan([0.25, 0.1, 0.0], 8);
        assert_eq!((p.nacking, p.timing_out, p.dying), (2, 1, 0));
        let p = plan([0.0, 0.0, 0.01], 4);
        assert_eq!(p.dying, 1);
        // Rounding up past the receivers: the later roles get fewer.
        let p = plan([0.4, 0.4, 0.4], 1);
        assert_eq!((p.dying, p.timing_out, p.nacking), (1, 0, 0));
    }

    #[test]
    fn misbehaving_receivers_are_the_last_of_each_subscription_so_each_keeps_an_acker() {
        // 3 subscriptions × 4 receivers; 3 die, 3 time out, 3 nack: one of each role per subscription,
        // and receiver 0 of each acks.
        let p = plan([0.25, 0.25, 0.25], 12);
        for i in 0..3 {
            let roles: Vec<Role> = (0..4).map(|r| p.role(i, 3, r, 4)).collect();
            assert_eq!(roles, [Role::Ack, Role::Nack, Role::TimeOut, Role::Die]);
        }
        // One receiver per subscription: the first subscriptions get the roles, the rest ack.
        let p = plan([0.0, 0.0, 0.5], 4);
        let roles: Vec<Role> = (0..4).map(|i| p.role(i, 4, 0, 1)).collect();
        assert_eq!(roles, [Role::Die, Role::Die, Role::Ack, Role::Ack]);
    }

    #[test]
    fn the_options_carry_the_window_the_wait_and_the_limit() {
        let options = AckOptions::new()
            .ack_wait(Duration::from_millis(200))
            .max_in_flight(64)
            .max_deliveries(3);
        let p = AckPlan::new(options, [0.0; 3], 1);
        assert_eq!(p.options(), options);
        assert_eq!(p.drain_wait(), Duration::from_millis(2200));
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(json["ack_wait_ms"], 200);
        assert_eq!(json["max_deliveries"], 3);
    }
}
