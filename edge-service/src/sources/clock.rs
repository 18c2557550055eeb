//! The time a source stamps on what it reads.
//!
//! On the appliance that is the wall clock. In `kare demo --speed 10` the simulated node's data
//! clock runs ten times faster than the wall, and a meter stamped on the wall clock would report
//! the supply back long after the node did (the rules wait for every witness). So a source takes
//! its time from a [`SourceClock`]: the wall clock by default, or whatever clock the caller
//! gives it (the demo gives the simulation's).

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Where a source's time stamps come from. Cheap to clone.
#[derive(Clone, Default)]
pub struct SourceClock(Option<Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>>);

impl SourceClock {
    /// The system clock: what a real installation uses.
    pub fn wall() -> SourceClock {
        SourceClock(None)
    }

    /// A clock that reads `now` (a simulation's data clock, a test's fixed time).
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> SourceClock {
        SourceClock(Some(Arc::new(now)))
    }

    /// The time now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now(),
            Some(f) => f(),
        }
    }
}

impl std::fmt::Debug for SourceClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_none() {
            "wall clock"
        } else {
            "given clock"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_clock_is_read_and_the_default_is_the_wall() {
        let fixed = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(SourceClock::from_fn(move || fixed).now(), fixed);
        let before = Utc::now();
        let wall = SourceClock::default().now();
        assert!(wall >= before && wall <= Utc::now());
    }
}
