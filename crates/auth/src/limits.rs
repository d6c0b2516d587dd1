//! Per-principal rate limits on writes: a token bucket per principal (refill `rate` per
//! second up to `burst`). A refusal says when the next write will be accepted.

use crate::principal::AuthError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle (full) ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// Writes per second and burst per principal; `rate` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            rate: 100.0,
            burst: 200,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every principal seen.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::default(),
        }
    }

    /// Take one write from `principal`'s bucket, or say how long to wait.
    pub fn take(&self, principal: &str) -> Result<(), AuthError> {
        self.take_at(principal, Instant::now())
    }

    fn take_at(&self, principal: &str, now: Instant) -> Result<(), AuthError> {
        let RateLimit { rate, burst } = self.limit;
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(principal) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(principal.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err(AuthError::RateLimited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_writes_wait_for_the_refill() {
        let limiter = RateLimiter::new(RateLimit {
            rate: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take_at("a", t0).unwrap();
        }
        assert_eq!(
            limiter.take_at("a", t0),
            Err(AuthError::RateLimited {
                retry_after_secs: 1
            })
        );
        // Another principal has its own bucket.
        limiter.take_at("b", t0).unwrap();
        // Half a second refills one write at 2/s.
        limiter
            .take_at("a", t0 + Duration::from_millis(500))
            .unwrap();
        assert!(limiter
            .take_at("a", t0 + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limiter = RateLimiter::new(RateLimit {
            rate: 0.0,
            burst: 0,
        });
        for _ in 0..10_000 {
            limiter.take("a").unwrap();
        }
    }
}
