//! How evenly connections were spread over workers: every fairness figure the
//! harness reports, in one place, so the binary, the harness and the tests
//! compute the same numbers.
//!
//! For per-worker counts x_1..x_n with total S = Σx_i and mean μ = S/n:
//!
//! | figure | formula | even | one worker takes all |
//! |---|---|---|---|
//! | Jain's index | J = S² / (n · Σx_i²) | 1 | 1/n |
//! | coefficient of variation | CoV = σ/μ, σ² = Σ(x_i − μ)²/n (population) | 0 | √(n−1) |
//! | max/min | max x_i / min x_i (∞ if some worker got 0) | 1 | ∞ |
//! | max/mean | max x_i / μ | 1 | n |
//! | Gini coefficient | G = Σ_i Σ_j abs(x_i − x_j) / (2 n² μ) | 0 | (n−1)/n |
//! | top-1 share | max x_i / S | 1/n | 1 |
//! | idle workers | #{i : x_i / S < 1/(10n)} (a tenth of a fair share) | 0 | n−1 |
//!
//! The seed article's table, 14561 / 8329 / 2356 / 4885, gives J = 0.730,
//! CoV = 0.608, max/min = 6.18, max/mean = 1.93, G = 0.332, top-1 = 0.483,
//! no idle worker.
//!
//! Undefined inputs: with no worker, or no connection at all (S = 0), every
//! formula divides zero by zero. Such a spread is neither even nor uneven, so
//! every figure is `None` ([`UNDEFINED`] says why): the CSVs leave the cells
//! empty and the tables print `n/a`.

/// Why the figures of an empty distribution are missing, for the line that
/// goes with `n/a`.
pub const UNDEFINED: &str = "no connection was attributed to any worker, so the fairness figures are undefined (0/0)";

/// Every figure of one distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fairness {
    pub jain: f64,
    pub cov: f64,
    pub max_min: f64,
    pub max_mean: f64,
    pub gini: f64,
    pub top1_share: f64,
    pub idle_workers: usize,
}

impl Fairness {
    /// The figures of `counts`; `None` when there is no worker or no count.
    pub fn of(counts: &[u64]) -> Option<Fairness> {
        let sum = total(counts);
        if sum == 0.0 {
            return None;
        }
        let n = counts.len() as f64;
        let mean = sum / n;
        let sum_sq: f64 = counts.iter().map(|&c| (c as f64) * (c as f64)).sum();
        let var = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        let min = counts.iter().copied().min().unwrap_or(0) as f64;
        // Σ_i Σ_j |x_i - x_j| in O(n log n): over sorted x, 2 Σ_i (2i - n + 1)·x_i;
        // G = that / (2 n² μ) = Σ_i (2i - n + 1)·x_i / (n·S).
        let mut sorted = counts.to_vec();
        sorted.sort_unstable();
        let weighted: f64 = sorted
            .iter()
            .enumerate()
            .map(|(i, &x)| (2.0 * i as f64 - n + 1.0) * x as f64)
            .sum();
        Some(Fairness {
            jain: sum * sum / (n * sum_sq),
            cov: var.sqrt() / mean,
            max_min: if min == 0.0 { f64::INFINITY } else { max / min },
            max_mean: max / mean,
            gini: weighted / (n * sum),
            top1_share: max / sum,
            idle_workers: counts.iter().filter(|&&c| (c as f64 / sum) < 1.0 / (10.0 * n)).count(),
        })
    }
}

fn total(counts: &[u64]) -> f64 {
    counts.iter().map(|&c| c as f64).sum()
}

/// Jain's fairness index, S² / (n·Σx²); `None` when undefined.
pub fn jain(counts: &[u64]) -> Option<f64> {
    Fairness::of(counts).map(|f| f.jain)
}

/// Largest count over smallest count; `None` when undefined.
pub fn max_min_ratio(counts: &[u64]) -> Option<f64> {
    Fairness::of(counts).map(|f| f.max_min)
}

/// A figure as text with `digits` decimals, or `n/a` when undefined.
pub fn show(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u64; 4] = [14561, 8329, 2356, 4885];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// The seed's table, computed by hand: S = 30131, μ = 7532.75,
    /// Σx² = 310808923, S² = 907877161, Σ_i Σ_j |x_i - x_j| = 80118.
    #[test]
    fn seed_table_by_hand() {
        let f = Fairness::of(&SEED).unwrap();
        assert!(close(f.jain, 907877161.0 / (4.0 * 310808923.0)), "{f:?}");
        assert!((f.jain - 0.730).abs() < 0.0005);
        let mean = 30131.0 / 4.0;
        let var = [14561.0, 8329.0, 2356.0, 4885.0]
            .iter()
            .map(|x: &f64| (x - mean) * (x - mean))
            .sum::<f64>()
            / 4.0;
        assert!(close(f.cov, var.sqrt() / mean), "{f:?}");
        assert!(close(f.max_min, 14561.0 / 2356.0));
        assert!(close(f.max_mean, 14561.0 / mean));
        assert!(close(f.gini, 80118.0 / (2.0 * 16.0 * mean)), "{f:?}");
        assert!(close(f.top1_share, 14561.0 / 30131.0));
        assert_eq!(f.idle_workers, 0);
    }

    #[test]
    fn all_equal() {
        let f = Fairness::of(&[5, 5, 5, 5]).unwrap();
        assert_eq!(
            (f.jain, f.cov, f.max_min, f.max_mean, f.gini),
            (1.0, 0.0, 1.0, 1.0, 0.0)
        );
        assert_eq!(f.top1_share, 0.25);
        assert_eq!(f.idle_workers, 0);
    }

    #[test]
    fn one_takes_all() {
        for n in [2usize, 4, 8] {
            let mut c = vec![0u64; n];
            c[n - 1] = 1000;
            let f = Fairness::of(&c).unwrap();
            let nf = n as f64;
            assert!(close(f.jain, 1.0 / nf), "{n}: {f:?}");
            assert!(close(f.cov, (nf - 1.0).sqrt()), "{n}: {f:?}");
            assert_eq!(f.max_min, f64::INFINITY);
            assert!(close(f.max_mean, nf));
            assert!(close(f.gini, (nf - 1.0) / nf), "{n}: {f:?}");
            assert_eq!(f.top1_share, 1.0);
            assert_eq!(f.idle_workers, n - 1);
        }
    }

    #[test]
    fn idle_threshold_is_a_tenth_of_a_fair_share() {
        // n = 4: threshold share 1/40 = 0.025. 24/1000 is idle, 25/1000 is not.
        let idle = |c: &[u64]| Fairness::of(c).unwrap().idle_workers;
        assert_eq!(idle(&[24, 325, 325, 326]), 1);
        assert_eq!(idle(&[25, 325, 325, 325]), 0);
    }

    #[test]
    fn an_empty_or_all_zero_spread_is_undefined() {
        for c in [&[][..], &[0][..], &[0, 0][..]] {
            assert_eq!(Fairness::of(c), None, "{c:?}");
            assert_eq!((jain(c), max_min_ratio(c)), (None, None));
        }
        assert_eq!(show(jain(&[]), 3), "n/a");
        let one = Fairness::of(&[7]).unwrap();
        assert_eq!(
            (one.jain, one.max_min, one.top1_share, one.idle_workers),
            (1.0, 1.0, 1.0, 0)
        );
        assert_eq!(show(jain(&[7, 7]), 3), "1.000");
    }
}
