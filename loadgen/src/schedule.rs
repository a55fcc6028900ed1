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

use crate::config::{Arrivals, OpenLoop, Stop};

/// splitmix64 (Steele, Lea, Flood 2014): a seed expander, used to fill the
/// state of [`Xoshiro256pp`] from one `u64`.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256++ (Blackman, Vigna 2019): small, fast, and good enough for
/// arrival gaps; not for anything secret.
#[derive(Debug, Clone)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// A generator for stream `stream` of `seed`: different streams of one
    /// seed, and one stream of different seeds, are unrelated.
    pub fn new(seed: u64, stream: u64) -> Xoshiro256pp {
        let mut sm = SplitMix64(seed);
        let base = sm.next_u64();
        let mut sm = SplitMix64(base ^ SplitMix64(stream).next_u64());
        let mut s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        if s == [0; 4] {
            s[0] = 1; // the one state xoshiro cannot leave
        }
        Xoshiro256pp { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Exponentially distributed with mean `mean`.
    pub fn next_exp(&mut self, mean: f64) -> f64 {
        -self.next_unit().ln() * mean
    }
}

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
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference implementation.
        let mut sm = SplitMix64(1234567);
        assert_eq!(sm.next_u64(), 6457827717110365317);
        assert_eq!(sm.next_u64(), 3203168211198807973);
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
