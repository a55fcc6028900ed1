//! When each open-loop connection is meant to start.
//!
//! An open-loop run measures latency from the *intended* start of each
//! connection, so the intended times must not depend on how the run goes:
//! they are generated ahead from the run start, by a pure function of the
//! rate, the arrival model, the seed and the thread. A [`Schedule`] is a
//! cursor over one thread's arrivals, computed lazily, so a long run keeps
//! nothing per arrival; the engine's FIFO backlog is simply the part of the
//! cursor whose times have already passed.
//!
//! - Constant: the union over `T` threads is every `1/R`; thread `i` takes
//!   arrivals `i, i+T, i+2T, ...`, i.e. `(k*T + i)/R` for `k = 0, 1, ...`.
//! - Poisson: thread `i` runs its own Poisson process of rate `R/T`
//!   (exponential gaps of mean `T/R`, the first gap included) from a
//!   xoshiro256++ generator seeded by splitmix64 from the seed and `i`. The
//!   union of independent Poisson processes is a Poisson process of rate `R`.
//!
//! `Stop::Connections(n)`: `n` arrivals in total, thread `i` taking
//! `n/T + (i < n%T)` of them (for constant arrivals, exactly the first `n`
//! of the union). `Stop::Duration(d)`: the arrivals before `d`.

use std::time::Duration;

#[cfg(test)]
use crate::config::MAX_RATE;
use crate::config::{Arrivals, OpenLoop, Stop};
pub use records::rng::{SplitMix64, Xoshiro256pp};

/// Expected number of Poisson arrivals up to which [`Schedule::skip_before`]
/// steps through them one by one (exactly as [`Schedule::pop`] would);
/// beyond it the count is drawn at once, so one skip costs at most about
/// this many steps whatever the rate.
pub const EXACT_SKIP: u64 = 1024;

/// One thread's arrivals, as offsets from the run start, in increasing order.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrivals: Arrivals,
    /// This thread's mean gap, in nanoseconds (`T/R`).
    gap_ns: f64,
    /// Constant arrivals: this thread's offset of its first arrival (`i/R`).
    phase_ns: f64,
    /// Arrivals handed out (popped) so far.
    popped: u64,
    /// At most this many arrivals (Connections mode).
    limit: Option<u64>,
    /// Only arrivals before this offset (Duration mode).
    end_ns: Option<f64>,
    /// Poisson: the running time of the next arrival.
    poisson_ns: f64,
    rng: Xoshiro256pp,
    /// The next arrival, once computed; `None` after the last.
    next: Option<Duration>,
    done: bool,
}

impl Schedule {
    /// Thread `thread` of `threads`, for `open` and `stop`, seeded by `seed`.
    pub fn new(open: &OpenLoop, seed: u64, thread: usize, threads: usize, stop: Stop) -> Schedule {
        let threads = threads.max(1);
        let (limit, end_ns) = match stop {
            Stop::Connections(n) => {
                let t = threads as u64;
                (Some(n / t + u64::from((thread as u64) < n % t)), None)
            }
            Stop::Duration(d) => (None, Some(d.as_nanos() as f64)),
        };
        let mut s = Schedule {
            arrivals: open.arrivals,
            gap_ns: threads as f64 / open.rate * 1e9,
            phase_ns: thread as f64 / open.rate * 1e9,
            popped: 0,
            limit,
            end_ns,
            poisson_ns: 0.0,
            rng: Xoshiro256pp::new(seed, thread as u64),
            next: None,
            done: false,
        };
        s.advance();
        s
    }

    /// Computes `self.next` for arrival number `self.popped`.
    fn advance(&mut self) {
        if self.done || self.limit.is_some_and(|l| self.popped >= l) {
            self.next = None;
            self.done = true;
            return;
        }
        let t = match self.arrivals {
            Arrivals::Constant => self.phase_ns + self.popped as f64 * self.gap_ns,
            Arrivals::Poisson => {
                self.poisson_ns += self.rng.next_exp(self.gap_ns);
                self.poisson_ns
            }
        };
        if self.end_ns.is_some_and(|e| t >= e) || !t.is_finite() || t >= u64::MAX as f64 {
            self.next = None;
            self.done = true;
            return;
        }
        self.next = Some(Duration::from_nanos(t.round() as u64));
    }

    /// The next arrival's offset from the run start, if there is one.
    pub fn peek(&self) -> Option<Duration> {
        self.next
    }

    /// Takes the next arrival (it is then started or dropped, never forgotten).
    pub fn pop(&mut self) -> Option<Duration> {
        let t = self.next?;
        self.popped += 1;
        self.advance();
        Some(t)
    }

    /// Takes every arrival before `cut` (an offset from the run start)
    /// without handing it out, and returns how many there were: the bulk
    /// form of popping and dropping them one by one, so that the work does
    /// not grow with the rate. Constant arrivals are counted exactly, in
    /// closed form. Poisson arrivals are stepped through one by one while the
    /// expected count is at most [`EXACT_SKIP`]; beyond that the count is
    /// drawn from its distribution (Poisson, by its normal approximation,
    /// which at a mean above [`EXACT_SKIP`] is within 1% in every quantile
    /// that matters here) and, the process being memoryless, the next
    /// arrival is drawn afresh from `cut` on. Either way the arrivals that
    /// follow are a Poisson process of the same rate; only the skipped
    /// stretch is not the one [`Schedule::pop`] would have produced.
    pub fn skip_before(&mut self, cut: Duration) -> u64 {
        let Some(next) = self.next else { return 0 };
        if next >= cut {
            return 0;
        }
        let cut_ns = cut.as_nanos() as f64;
        let remaining = self.limit.map_or(u64::MAX, |l| l - self.popped);
        let before = self.popped;
        match self.arrivals {
            Arrivals::Constant => {
                // Arrival k is at phase + k*gap, handed out rounded to the
                // nanosecond: the first one not before the cut has
                // k = ceil((cut - 0.5 - phase) / gap), and none exists at or
                // after the end.
                let first_at = |t: f64| {
                    let k = ((t - self.phase_ns) / self.gap_ns).ceil();
                    if k.is_finite() && k > 0.0 {
                        k.min(u64::MAX as f64) as u64
                    } else {
                        0
                    }
                };
                let k = first_at(cut_ns - 0.5).min(self.end_ns.map_or(u64::MAX, first_at));
                let n = k.saturating_sub(self.popped).min(remaining);
                self.popped += n;
                self.advance();
            }
            Arrivals::Poisson => {
                let mean = (cut_ns - next.as_nanos() as f64) / self.gap_ns;
                if mean > EXACT_SKIP as f64 {
                    // `next` itself, then those in (next, cut).
                    let z = self.rng.next_normal();
                    let more = (mean + mean.sqrt() * z).round().max(0.0);
                    let more = if more.is_finite() {
                        more.min(u64::MAX as f64) as u64
                    } else {
                        u64::MAX
                    };
                    let n = more.saturating_add(1).min(remaining);
                    self.popped += n;
                    self.poisson_ns = self.end_ns.map_or(cut_ns, |e| cut_ns.min(e));
                    self.advance();
                }
            }
        }
        // What is left (rounding, or the Poisson stretch short enough to
        // step through) one by one; `next` is then at or after the cut.
        while self.next.is_some_and(|t| t < cut) {
            self.pop();
        }
        self.popped - before
    }

    /// Ends the schedule early (cancel): no further arrivals.
    pub fn finish(&mut self) {
        self.done = true;
        self.next = None;
    }

    /// Arrivals taken with [`Schedule::pop`] so far: the thread's `scheduled`.
    pub fn popped(&self) -> u64 {
        self.popped
    }
}

impl Iterator for Schedule {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64, arrivals: Arrivals) -> OpenLoop {
        OpenLoop {
            rate,
            arrivals,
            max_inflight: 10,
        }
    }

    fn take(o: &OpenLoop, seed: u64, i: usize, t: usize, stop: Stop) -> Vec<Duration> {
        Schedule::new(o, seed, i, t, stop).collect()
    }

    #[test]
    fn constant_union_is_evenly_spaced() {
        let o = open(1000.0, Arrivals::Constant);
        let stop = Stop::Connections(10);
        let mut all: Vec<Duration> = (0..3).flat_map(|i| take(&o, 1, i, 3, stop)).collect();
        assert_eq!(all.len(), 10);
        all.sort();
        let want: Vec<Duration> = (0..10).map(Duration::from_millis).collect();
        assert_eq!(all, want);
        // Thread counts: 4, 3, 3.
        assert_eq!(take(&o, 1, 0, 3, stop).len(), 4);
        assert_eq!(take(&o, 1, 2, 3, stop).len(), 3);
        // Thread 1 of 2 at 1000/s: 1 ms, 3 ms, 5 ms.
        assert_eq!(
            take(&o, 1, 1, 2, Stop::Connections(6)),
            [1, 3, 5].map(Duration::from_millis)
        );
    }

    #[test]
    fn duration_mode_stops_before_the_end() {
        let o = open(2000.0, Arrivals::Constant);
        let d = Stop::Duration(Duration::from_secs(2));
        let n: usize = (0..2).map(|i| take(&o, 1, i, 2, d).len()).sum();
        assert_eq!(n, 4000);
        let last = take(&o, 1, 1, 2, d).pop().unwrap();
        assert_eq!(last, Duration::from_micros(1_999_500));
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let o = open(500.0, Arrivals::Poisson);
        let stop = Stop::Connections(1000);
        let a = take(&o, 7, 0, 2, stop);
        assert_eq!(a.len(), 500);
        assert_eq!(a, take(&o, 7, 0, 2, stop));
        assert_ne!(a, take(&o, 8, 0, 2, stop), "another seed");
        assert_ne!(a, take(&o, 7, 1, 2, stop), "another thread");
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "in time order");
    }

    #[test]
    fn poisson_gaps_are_exponential() {
        // 200k gaps at 1000/s: mean 1 ms, standard deviation 1 ms (CoV 1),
        // P(gap > mean) = 1/e.
        let o = open(1000.0, Arrivals::Poisson);
        let ts = take(&o, 42, 0, 1, Stop::Connections(200_000));
        let mut prev = 0.0;
        let gaps: Vec<f64> = ts
            .iter()
            .map(|t| {
                let s = t.as_secs_f64();
                let g = s - prev;
                prev = s;
                g
            })
            .collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 1e-3).abs() < 1e-3 * 0.01, "mean {mean}");
        assert!((var.sqrt() / mean - 1.0).abs() < 0.02, "cov {}", var.sqrt() / mean);
        let above = gaps.iter().filter(|&&g| g > 1e-3).count() as f64 / n;
        assert!((above - (-1.0f64).exp()).abs() < 0.01, "{above}");
    }

    #[test]
    fn poisson_count_in_duration_mode() {
        // Counts over many seeds: mean R*d, variance R*d.
        let o = open(1000.0, Arrivals::Poisson);
        let d = Stop::Duration(Duration::from_secs(1));
        let counts: Vec<f64> = (0..200)
            .map(|seed| (0..2).map(|i| take(&o, seed, i, 2, d).len()).sum::<usize>() as f64)
            .collect();
        let mean = counts.iter().sum::<f64>() / 200.0;
        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / 199.0;
        // Standard error of the mean: sqrt(1000/200) ~ 2.2.
        assert!((mean - 1000.0).abs() < 10.0, "mean {mean}");
        assert!((500.0..2000.0).contains(&var), "variance {var}");
    }

    /// Pops and counts what comes before `cut`, one by one.
    fn pop_before(s: &mut Schedule, cut: Duration) -> u64 {
        let mut n = 0;
        while s.peek().is_some_and(|t| t < cut) {
            s.pop();
            n += 1;
        }
        n
    }

    #[test]
    fn constant_skip_counts_exactly_what_popping_would() {
        for (rate, threads, stop) in [
            (1000.0, 1, Stop::Duration(Duration::from_secs(2))),
            (3333.0, 3, Stop::Duration(Duration::from_millis(1500))),
            (7e8, 2, Stop::Connections(1_000_003)),
            (1e6, 4, Stop::Connections(10)),
        ] {
            let o = open(rate, Arrivals::Constant);
            for thread in 0..threads {
                let mut a = Schedule::new(&o, 1, thread, threads, stop);
                let mut b = a.clone();
                for cut_us in [0, 1, 999, 1000, 1001, 1_234_567, 1_500_000, 9_000_000] {
                    let cut = Duration::from_micros(cut_us);
                    assert_eq!(a.skip_before(cut), pop_before(&mut b, cut), "rate {rate} cut {cut:?}");
                    assert_eq!(
                        (a.peek(), a.popped()),
                        (b.peek(), b.popped()),
                        "rate {rate} cut {cut:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn skipping_an_hour_at_the_highest_rate_is_one_step() {
        let o = open(MAX_RATE, Arrivals::Constant);
        let mut s = Schedule::new(&o, 1, 0, 1, Stop::Duration(Duration::from_secs(7200)));
        assert_eq!(s.skip_before(Duration::from_secs(3600)), 3_600_000_000_000);
        assert_eq!(s.peek(), Some(Duration::from_secs(3600)));
        // Past the end: every arrival, and then none.
        assert_eq!(s.skip_before(Duration::from_secs(9000)), 3_600_000_000_000);
        assert_eq!(s.peek(), None);
        assert_eq!(s.popped(), 7_200_000_000_000);
    }

    #[test]
    fn poisson_skip_is_exact_when_short_and_unbiased_when_long() {
        let o = open(1000.0, Arrivals::Poisson);
        let stop = Stop::Duration(Duration::from_secs(100));
        // Short stretches (expected count <= EXACT_SKIP): as popping.
        let mut a = Schedule::new(&o, 3, 0, 1, stop);
        let mut b = a.clone();
        for cut_ms in [0, 5, 400, 1000, 1900] {
            let cut = Duration::from_millis(cut_ms);
            assert_eq!(a.skip_before(cut), pop_before(&mut b, cut));
            assert_eq!(a.peek(), b.peek());
        }
        // Long ones: the count's mean and variance are the rate's, and
        // what follows is still after the cut.
        let counts: Vec<f64> = (0..400)
            .map(|seed| {
                let mut s = Schedule::new(&open(1e6, Arrivals::Poisson), seed, 0, 1, stop);
                let n = s.skip_before(Duration::from_millis(100));
                assert!(s.peek().unwrap() >= Duration::from_millis(100));
                n as f64
            })
            .collect();
        let mean = counts.iter().sum::<f64>() / 400.0;
        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / 399.0;
        // Expected 1e5 each, sd 316; the mean of 400 has sd 16.
        assert!((mean - 1e5).abs() < 100.0, "mean {mean}");
        assert!((5e4..2e5).contains(&var), "variance {var}");
    }

    #[test]
    fn skip_respects_the_connection_limit() {
        for arrivals in [Arrivals::Constant, Arrivals::Poisson] {
            let o = open(1e8, arrivals);
            let mut s = Schedule::new(&o, 1, 0, 1, Stop::Connections(5000));
            s.pop();
            assert_eq!(s.skip_before(Duration::from_secs(10)), 4999);
            assert_eq!((s.peek(), s.popped()), (None, 5000));
        }
    }

    #[test]
    fn finish_ends_early_and_popped_counts() {
        let o = open(100.0, Arrivals::Constant);
        let mut s = Schedule::new(&o, 1, 0, 1, Stop::Connections(5));
        assert_eq!(s.peek(), Some(Duration::ZERO));
        assert_eq!(s.pop(), Some(Duration::ZERO));
        assert_eq!(s.peek(), Some(Duration::from_millis(10)));
        s.finish();
        assert_eq!((s.peek(), s.pop(), s.popped()), (None, None, 1));
    }
}
