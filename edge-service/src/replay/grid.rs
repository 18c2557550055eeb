//! The uniform time grid a recording is judged on: its rate, and how far apart two file samples
//! may be before the span between them is a gap (never interpolated across).

use super::feed::{Feed, Gap, Window, MAX_RESAMPLE_PER_CYCLE};
use crate::recording::{AnalogChannel, Recording, MAX_SAMPLE_RATE_HZ};

/// The uniform grid a variable-rate or gapped recording is resampled onto as it is fed.
pub(super) struct Grid {
    /// Grid rate, samples per second.
    pub(super) rate: f64,
    /// Longest interval between two file samples that still holds a waveform; longer is a gap.
    pub(super) max_interval: f64,
}

impl Grid {
    pub(super) fn new(rec: &Recording, nominal_hz: f64) -> Grid {
        // Fewer than 8 samples per cycle hold no waveform to interpolate.
        let mut max_interval = 1.0 / (8.0 * nominal_hz);
        let from_rates = !rec.rates.is_empty() && rec.rates.iter().all(|r| r.rate_hz > 0.0);
        let fastest = if from_rates {
            // The rate segments are the recorder's own clock: no gaps within them.
            rec.rates
                .iter()
                .map(|r| r.rate_hz)
                .filter(|r| *r <= MAX_SAMPLE_RATE_HZ)
                .fold(0.0_f64, f64::max)
        } else {
            // Time stamps: the typical interval is the median (a gap cannot bias it), and an
            // interval half as long again means rows are missing.
            let mut dt: Vec<f64> = rec.time_s.windows(2).map(|w| w[1] - w[0]).collect();
            let mid = dt.len() / 2;
            let median = *dt.select_nth_unstable_by(mid, f64::total_cmp).1;
            max_interval = max_interval.min(1.5 * median);
            if median > 0.0 {
                1.0 / median
            } else {
                f64::INFINITY
            }
        };
        let rate = if fastest > MAX_SAMPLE_RATE_HZ {
            fastest
        } else {
            fastest.min(MAX_RESAMPLE_PER_CYCLE * nominal_hz)
        };
        Grid { rate, max_interval }
    }

    /// Feeds every grid sample of `rec` in order, skipping gaps (listed in `gaps`).
    pub(super) fn run(
        &self,
        rec: &Recording,
        channels: &[&AnalogChannel],
        feed: &mut Feed,
        gaps: &mut Vec<Gap>,
        mut on_window: impl FnMut(Window),
    ) {
        let t = &rec.time_s;
        let n = t.len();
        let t0 = t[0];
        let last = ((t[n - 1] - t0) * self.rate).floor() as u64;
        let mut frame = vec![0f64; channels.len()];
        let mut j = 0usize;
        let mut k = 0u64;
        while k <= last {
            let tk = t0 + k as f64 / self.rate;
            while j + 2 < n && t[j + 1] <= tk {
                j += 1;
            }
            let (ta, tb) = (t[j], t[j + 1]);
            if tb - ta > self.max_interval && tk > ta && tk < tb {
                // Never interpolate across a gap: stop the meter and start again after it.
                // Gaps that follow each other (a slow rate segment) are one gap.
                match gaps.last_mut() {
                    Some(g) if g.offset_s + g.duration_s >= ta - t0 - 1e-12 => {
                        g.duration_s = tb - t0 - g.offset_s;
                    }
                    _ => gaps.push(Gap {
                        offset_s: ta - t0,
                        duration_s: tb - ta,
                    }),
                }
                j += 1;
                // `max` keeps k moving when rounding puts the next grid point just before tb.
                k = (((tb - t0) * self.rate).ceil() as u64).max(k + 1);
                feed.restart(k);
                continue;
            }
            let w = if tb > ta {
                ((tk - ta) / (tb - ta)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            for (f, c) in frame.iter_mut().zip(channels) {
                let (a, b) = (c.values[j], c.values[j + 1]);
                // On a file sample, its own value; between two, both must be there (NaN
                // otherwise: a stand-in, flagged).
                *f = if w == 0.0 {
                    a
                } else if w == 1.0 {
                    b
                } else {
                    a + (b - a) * w
                };
            }
            if let Some(win) = feed.push(k, &frame) {
                on_window(win);
            }
            k += 1;
        }
    }
}
