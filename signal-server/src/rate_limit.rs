//! A budget of requests per client address and minute, for `/api/config`
//! (each answer may mint TURN credentials): `CONFIG_REQUESTS_PER_MIN`, then
//! `429 Too Many Requests` with `Retry-After`.
//!
//! A token bucket per address (per /64 for IPv6, [`budget_key`]): a full
//! minute's budget at once, refilled evenly over the minute. An address
//! whose bucket is full again carries no information and is forgotten, so
//! the map holds only the addresses seen in the last minute or two, and
//! never more than [`MAX_ADDRESSES`]: past that, new addresses are refused
//! until old ones expire (a flood from that many addresses is an attack;
//! the memory stays a few MB).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::client_addr::budget_key;

/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 65_536;

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct PerMinute {
    per_min: u32,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_addr: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Requests left, as of `at`.
    tokens: f64,
    at: Instant,
}

impl PerMinute {
    pub fn new(per_min: u32) -> Self {
        Self {
            per_min: per_min.max(1),
            buckets: Mutex::new(Buckets {
                by_addr: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    pub fn per_min(&self) -> u32 {
        self.per_min
    }

    /// Spends one request of `ip`'s budget, or says when the next one is
    /// due.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_min);
        let per_sec = capacity / MINUTE.as_secs_f64();
        // Plain numbers only: a panic cannot leave them half-changed.
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let since_sweep = now.saturating_duration_since(b.last_sweep);
        if since_sweep >= MINUTE
            || (b.by_addr.len() >= MAX_ADDRESSES && since_sweep >= Duration::from_secs(1))
        {
            b.last_sweep = now;
            // Full again after at most a minute: nothing to remember.
            b.by_addr
                .retain(|_, bucket| now.saturating_duration_since(bucket.at) < MINUTE);
        }
        let key = budget_key(ip);
        let full = b.by_addr.len() >= MAX_ADDRESSES;
        let bucket = match b.by_addr.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => return Err(MINUTE),
            Entry::Vacant(e) => e.insert(Bucket {
                tokens: capacity,
                at: now,
            }),
        };
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * per_sec;
        let tokens = (bucket.tokens + refill).min(capacity);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / per_sec))
        }
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_addr
            .len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_budget_then_one_request_per_refill() {
        let l = PerMinute::new(5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.take(a, t0), Ok(()));
        }
        let wait = l.take(a, t0).unwrap_err();
        assert!(
            (11..=12).contains(&wait.as_secs()),
            "{wait:?}: one request per 12 s"
        );
        // Another address has its own budget.
        assert_eq!(l.take("10.0.0.2".parse().unwrap(), t0), Ok(()));
        // One request's worth refilled.
        assert_eq!(l.take(a, t0 + Duration::from_secs(12)), Ok(()));
        assert!(l.take(a, t0 + Duration::from_secs(12)).is_err());
        // After a minute the budget is whole again.
        let t1 = t0 + Duration::from_secs(80);
        for _ in 0..5 {
            assert_eq!(l.take(a, t1), Ok(()));
        }
        assert!(l.take(a, t1).is_err());
    }

    #[test]
    fn addresses_expire_and_their_number_is_bounded() {
        let l = PerMinute::new(60);
        let t0 = Instant::now();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..MAX_ADDRESSES as u32 {
            assert_eq!(l.take(ip(i), t0), Ok(()));
        }
        assert_eq!(l.tracked(), MAX_ADDRESSES);
        // Full: a new address waits; a known one still has its budget.
        assert_eq!(l.take(ip(u32::MAX >> 1), t0), Err(MINUTE));
        assert_eq!(l.take(ip(7), t0), Ok(()));
        // A minute later every bucket is full again, and forgotten.
        assert_eq!(l.take(ip(u32::MAX >> 1), t0 + MINUTE), Ok(()));
        assert_eq!(l.tracked(), 1);
    }
}
