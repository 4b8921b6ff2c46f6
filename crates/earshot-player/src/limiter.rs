//! Login throttling, sans-IO: who failed how often, and until when they must wait.
//!
//! Failures are counted per user name and per source address. Once either reaches its limit,
//! logins for that name (or from that address) are refused without checking the password
//! until `lockout` has passed since the last failure counted. Refused attempts do not extend
//! the lockout, so a guesser cannot keep a real user locked out forever by trickling guesses;
//! after the lockout the count starts again from zero. A successful login clears its user's
//! count (not its address's: one valid account must not reset a guesser's address).
//!
//! The clock is the caller's (`now` in every call), so tests drive it by hand. Both maps are
//! bounded ([`MAX_ENTRIES`]): when full, expired entries go first, then the stalest one.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Names and addresses remembered at most, each.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// One keyed map of failure counts with its limit.
#[derive(Debug)]
struct Counter<K> {
    limit: u32,
    capacity: usize,
    entries: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: u32, capacity: usize) -> Self {
        Counter {
            limit: limit.max(1),
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// How long `key` must still wait, if it is locked out.
    fn locked(&self, key: &K, now: Instant, lockout: Duration) -> Option<Duration> {
        let f = self.entries.get(key)?;
        if f.count < self.limit {
            return None;
        }
        let until = f.last + lockout;
        (until > now).then(|| until - now)
    }

    fn fail(&mut self, key: &K, now: Instant, lockout: Duration) {
        if let Some(f) = self.entries.get_mut(key) {
            if now.saturating_duration_since(f.last) >= lockout {
                // Old failures are forgotten: the window is the lockout itself.
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now, lockout);
        }
        self.entries.insert(
            key.clone(),
            Failures {
                count: 1,
                last: now,
            },
        );
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops what has expired; if nothing has, the entry whose last failure is oldest.
    fn make_room(&mut self, now: Instant, lockout: Duration) {
        self.entries
            .retain(|_, f| now.saturating_duration_since(f.last) < lockout);
        if self.entries.len() < self.capacity {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, f)| f.last)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

/// Why a login may not be tried now, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locked {
    pub retry_after: Duration,
}

#[derive(Debug)]
pub struct LoginLimiter {
    lockout: Duration,
    users: Counter<String>,
    addresses: Counter<String>,
}

impl LoginLimiter {
    pub fn new(per_user: u32, per_address: u32, lockout: Duration) -> Self {
        Self::with_capacity(per_user, per_address, lockout, MAX_ENTRIES)
    }

    pub fn with_capacity(per_user: u32, per_address: u32, lockout: Duration, cap: usize) -> Self {
        LoginLimiter {
            lockout,
            users: Counter::new(per_user, cap),
            addresses: Counter::new(per_address, cap),
        }
    }

    /// Whether a login for `user` from `address` may be checked now. `address` is `None` when
    /// the server does not know the peer (in-process tests); then only the user counts.
    pub fn check(&self, user: &str, address: Option<&str>, now: Instant) -> Result<(), Locked> {
        let by_user = self.users.locked(&user.to_string(), now, self.lockout);
        let by_address =
            address.and_then(|a| self.addresses.locked(&a.to_string(), now, self.lockout));
        match by_user.max(by_address) {
            None => Ok(()),
            Some(wait) => Err(Locked { retry_after: wait }),
        }
    }

    pub fn failed(&mut self, user: &str, address: Option<&str>, now: Instant) {
        self.users.fail(&user.to_string(), now, self.lockout);
        if let Some(a) = address {
            self.addresses.fail(&a.to_string(), now, self.lockout);
        }
    }

    pub fn succeeded(&mut self, user: &str) {
        self.users.clear(&user.to_string());
    }

    /// Entries held (users, addresses): for tests and the bound's checks.
    pub fn len(&self) -> (usize, usize) {
        (self.users.entries.len(), self.addresses.entries.len())
    }
}

/// Whole seconds to tell a client in `Retry-After`, never 0 (that would invite a retry now).
pub fn retry_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Requests per API key per minute, in fixed one-minute windows: a dashboard's backend that
/// loops (a bug, a stolen key) is slowed down before it loads the sensors or the database.
/// In memory, per player: a key may make `limit` requests per minute on each player. Bounded
/// like the login counters: when full, windows that are over go first, then the oldest.
#[derive(Debug)]
pub struct KeyRate {
    windows: HashMap<i64, (Instant, u32)>,
    capacity: usize,
}

/// The length of a rate window.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

impl KeyRate {
    pub fn new(capacity: usize) -> KeyRate {
        KeyRate {
            windows: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Counts one request of `key`; `Err(wait)` when it is over `limit` in this window.
    pub fn hit(&mut self, key: i64, limit: u32, now: Instant) -> Result<(), Duration> {
        if !self.windows.contains_key(&key) && self.windows.len() >= self.capacity {
            self.windows
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < RATE_WINDOW);
            if self.windows.len() >= self.capacity {
                let oldest = self
                    .windows
                    .iter()
                    .min_by_key(|(_, (s, _))| *s)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.windows.remove(&k);
                }
            }
        }
        let w = self.windows.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(w.0) >= RATE_WINDOW {
            *w = (now, 0);
        }
        if w.1 >= limit {
            return Err((w.0 + RATE_WINDOW).saturating_duration_since(now));
        }
        w.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKOUT: Duration = Duration::from_secs(60);

    #[test]
    fn a_user_is_locked_after_its_limit_and_free_after_the_lockout() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(3, 100, LOCKOUT);
        for i in 0..3 {
            assert!(
                l.check("alice", Some("10.0.0.1"), t0).is_ok(),
                "attempt {i}"
            );
            l.failed("alice", Some("10.0.0.1"), t0);
        }
        let locked = l.check("alice", Some("10.0.0.9"), t0 + Duration::from_secs(10));
        assert_eq!(
            locked,
            Err(Locked {
                retry_after: Duration::from_secs(50)
            })
        );
        // Another user from the same address is not locked (its address has room left).
        assert!(l.check("bob", Some("10.0.0.1"), t0).is_ok());
        // Refused attempts do not extend the lockout.
        assert!(l.check("alice", None, t0 + LOCKOUT).is_ok());
        // And the count starts again after it.
        l.failed("alice", None, t0 + LOCKOUT);
        assert!(l.check("alice", None, t0 + LOCKOUT).is_ok());
    }

    #[test]
    fn an_address_is_locked_across_user_names() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(100, 4, LOCKOUT);
        for i in 0..4 {
            l.failed(&format!("user{i}"), Some("192.0.2.7"), t0);
        }
        assert!(l.check("someone", Some("192.0.2.7"), t0).is_err());
        assert!(l.check("someone", Some("192.0.2.8"), t0).is_ok());
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(2, 2, LOCKOUT);
        l.failed("alice", Some("a"), t0);
        l.succeeded("alice");
        l.failed("alice", Some("a"), t0);
        assert!(
            l.check("alice", None, t0).is_ok(),
            "one failure since the success"
        );
        assert!(
            l.check("bob", Some("a"), t0).is_err(),
            "the address has two"
        );
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(2, 100, LOCKOUT);
        l.failed("alice", None, t0);
        l.failed("alice", None, t0 + LOCKOUT + Duration::from_secs(1));
        assert!(l
            .check("alice", None, t0 + LOCKOUT + Duration::from_secs(1))
            .is_ok());
    }

    #[test]
    fn the_maps_stay_bounded_and_evict_expired_then_stalest() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::with_capacity(1, 1, LOCKOUT, 3);
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i);
            l.failed(&format!("u{i}"), Some(&format!("a{i}")), now);
            let (users, addresses) = l.len();
            assert!(users <= 3 && addresses <= 3, "{users} {addresses}");
        }
        // The newest are kept: the last guesser is still locked.
        assert!(l.check("u999", None, t0 + Duration::from_secs(1)).is_err());
        assert!(l.check("u0", None, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::ZERO), 1);
        assert_eq!(retry_seconds(Duration::from_secs(5)), 5);
        assert_eq!(retry_seconds(Duration::from_millis(5001)), 6);
    }

    #[test]
    fn a_key_over_its_rate_waits_for_the_next_window() {
        let mut r = KeyRate::new(2);
        let t0 = Instant::now();
        assert!(r.hit(1, 2, t0).is_ok());
        assert!(r.hit(1, 2, t0).is_ok());
        let wait = r.hit(1, 2, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Another key has its own window; a third evicts the oldest, never grows the map.
        assert!(r.hit(2, 2, t0).is_ok());
        assert!(r.hit(3, 2, t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(r.windows.len(), 2);
        assert!(r.hit(1, 2, t0 + RATE_WINDOW).is_ok());
    }
}
