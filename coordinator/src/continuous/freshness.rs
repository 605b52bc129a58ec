//! Freshness of a materialized view: for each epoch that brought it new rows, the time from
//! the acknowledgement of the epoch's oldest row to the view's commit. Kept for ten minutes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Default)]
pub(crate) struct Freshness {
    samples: VecDeque<(Instant, f64)>,
}

/// p50, p99 and max lag in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) samples: usize,
}

impl Freshness {
    pub(crate) fn record(&mut self, now: Instant, lag: Duration) {
        self.samples.push_back((now, lag.as_secs_f64() * 1000.0));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            self.samples.pop_front();
        }
    }

    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        let now = Instant::now();
        let mut lags: Vec<f64> = self
            .samples
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, lag)| *lag)
            .collect();
        if lags.is_empty() {
            return None;
        }
        lags.sort_by(f64::total_cmp);
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
        Some(Percentiles {
            p50: at(0.5),
            p99: at(0.99),
            max: lags[lags.len() - 1],
            samples: lags.len(),
        })
    }
}
