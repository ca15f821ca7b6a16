//! Failed sign-ins, limited per (username, address): after `MAX_FAILURES`
//! within `WINDOW`, that pair is refused for `LOCKOUT`, then may try again. A
//! lockout never outlives `LOCKOUT`, and other addresses are not affected, so
//! it cannot lock the admin out for good; `manager users set-password` works
//! without the server in any case.
//!
//! Memory is bounded: at most [`CAPACITY`] pairs are tracked, and a new one
//! evicts the least recently seen. Every operation is O(1), so a flood of
//! failures with ever-new usernames costs neither memory nor a scan. A pair
//! that keeps trying is seen on every try and stays tracked; an attacker must
//! push [`CAPACITY`] other pairs through the password check (one per core at
//! a time) to make the limiter forget one.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(300);
/// How long a pair is refused after too many failures.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// The most (username, address) pairs tracked at once.
pub const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

/// The failure counts.
pub struct SignInLimiter {
    failures: LruCache<(String, Option<IpAddr>), Failures>,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl std::fmt::Debug for SignInLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimiter").field("tracked", &self.failures.len()).finish()
    }
}

impl SignInLimiter {
    /// A limiter tracking at most `capacity` pairs.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { failures: LruCache::new(capacity) }
    }

    /// How many pairs are tracked.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// `Err(wait)` while the pair is locked out.
    pub fn check(&mut self, username: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let key = (username.to_owned(), address);
        match self.failures.get(&key).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            Some(_) => {
                self.failures.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failure; returns the lockout if this one started it.
    pub fn fail(&mut self, username: &str, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let key = (username.to_owned(), address);
        if self.failures.get(&key).is_none() {
            // At capacity, this evicts the least recently seen pair.
            self.failures.insert(key.clone(), Failures { count: 0, first_at: now, locked_until: None });
        }
        let Some(entry) = self.failures.get_mut(&key) else {
            return None; // a capacity of 0 tracks nothing
        };
        if now.duration_since(entry.first_at) >= WINDOW {
            *entry = Failures { count: 0, first_at: now, locked_until: None };
        }
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCKOUT);
            return Some(LOCKOUT);
        }
        None
    }

    /// A successful sign-in clears the pair's failures.
    pub fn succeed(&mut self, username: &str, address: Option<IpAddr>) {
        self.failures.remove(&(username.to_owned(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn locks_out_after_max_failures_and_only_for_a_while() {
        let mut limiter = SignInLimiter::default();
        let start = Instant::now();
        for _ in 1..MAX_FAILURES {
            assert_eq!(limiter.fail("admin", HOME, start), None);
            assert!(limiter.check("admin", HOME, start).is_ok());
        }
        assert_eq!(limiter.fail("admin", HOME, start), Some(LOCKOUT));
        assert_eq!(limiter.check("admin", HOME, start), Err(LOCKOUT));
        // Another address or user is unaffected.
        assert!(limiter.check("admin", None, start).is_ok());
        assert!(limiter.check("alice", HOME, start).is_ok());
        // The lockout ends by itself.
        assert!(limiter.check("admin", HOME, start + LOCKOUT).is_ok());
        assert_eq!(limiter.fail("admin", HOME, start + LOCKOUT), None, "counting starts afresh");
    }

    #[test]
    fn success_and_time_clear_failures() {
        let mut limiter = SignInLimiter::default();
        let start = Instant::now();
        for _ in 1..MAX_FAILURES {
            limiter.fail("admin", HOME, start);
        }
        limiter.succeed("admin", HOME);
        assert_eq!(limiter.fail("admin", HOME, start), None);
        for _ in 1..MAX_FAILURES {
            limiter.fail("bob", HOME, start);
        }
        assert_eq!(limiter.fail("bob", HOME, start + WINDOW), None, "old failures fall out of the window");
    }

    #[test]
    fn ever_new_usernames_do_not_grow_it_and_a_pair_that_keeps_trying_stays_locked() {
        let mut limiter = SignInLimiter::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.fail("admin", HOME, start);
        }
        for n in 0..3 * CAPACITY {
            limiter.fail(&format!("user{n}"), HOME, start);
            if n % 1000 == 0 {
                // The attacker comes back to `admin` now and then: still refused.
                assert!(limiter.check("admin", HOME, start).is_err(), "after {n} other names");
            }
        }
        assert_eq!(limiter.len(), CAPACITY);
        assert!(limiter.check("admin", HOME, start).is_err());
    }

    #[test]
    fn the_least_recently_seen_pair_is_the_one_forgotten() {
        let mut limiter = SignInLimiter::with_capacity(3);
        let start = Instant::now();
        for _ in 1..MAX_FAILURES {
            limiter.fail("old", HOME, start);
            limiter.fail("busy", HOME, start);
        }
        limiter.check("busy", HOME, start).unwrap(); // seen again: now the most recent
        limiter.fail("new1", HOME, start);
        limiter.fail("new2", HOME, start); // evicts `old`, not `busy`
        assert_eq!(limiter.len(), 3);
        assert_eq!(limiter.fail("busy", HOME, start), Some(LOCKOUT), "busy's failures were kept");
        assert_eq!(limiter.fail("old", HOME, start), None, "old was forgotten and counts from one again");
    }
}
