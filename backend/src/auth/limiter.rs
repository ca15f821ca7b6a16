//! Failed sign-ins, limited per (username, address): after `MAX_FAILURES`
//! within `WINDOW`, that pair is refused for `LOCKOUT`, then may try again. A
//! lockout never outlives `LOCKOUT`, and other addresses are not affected, so
//! it cannot lock the admin out for good; `manager users set-password` works
//! without the server in any case.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(300);
/// How long a pair is refused after too many failures.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Entries kept before old ones are pruned (bounds memory under attack).
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

/// The failure counts.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    failures: HashMap<(String, Option<IpAddr>), Failures>,
}

impl SignInLimiter {
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
        if self.failures.len() >= PRUNE_AT {
            self.failures
                .retain(|_, f| now.duration_since(f.first_at) < WINDOW || f.locked_until.is_some_and(|u| u > now));
        }
        let entry = self.failures.entry((username.to_owned(), address)).or_insert(Failures {
            count: 0,
            first_at: now,
            locked_until: None,
        });
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
}
