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
//! Degenerate inputs: an empty or all-zero list is "perfectly even" (J = 1,
//! CoV = 0, max/min = max/mean = 1, G = 0, top-1 = 1/n or 0 when empty, no
//! idle workers).

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
    pub fn of(counts: &[u64]) -> Fairness {
        Fairness {
            jain: jain(counts),
            cov: cov(counts),
            max_min: max_min_ratio(counts),
            max_mean: max_mean_ratio(counts),
            gini: gini(counts),
            top1_share: top1_share(counts),
            idle_workers: idle_workers(counts),
        }
    }
}

fn total(counts: &[u64]) -> f64 {
    counts.iter().map(|&c| c as f64).sum()
}

/// Jain's fairness index, S² / (n·Σx²).
pub fn jain(counts: &[u64]) -> f64 {
    let sum = total(counts);
    let sum_sq: f64 = counts.iter().map(|&c| (c as f64) * (c as f64)).sum();
    if sum_sq == 0.0 {
        return 1.0;
    }
    sum * sum / (counts.len() as f64 * sum_sq)
}

/// Coefficient of variation: population standard deviation over the mean.
pub fn cov(counts: &[u64]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let n = counts.len() as f64;
    let mean = total(counts) / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean
}

/// Largest count over smallest count.
pub fn max_min_ratio(counts: &[u64]) -> f64 {
    let (Some(&max), Some(&min)) = (counts.iter().max(), counts.iter().min()) else {
        return 1.0;
    };
    match (min, max) {
        (_, 0) => 1.0,
        (0, _) => f64::INFINITY,
        _ => max as f64 / min as f64,
    }
}

/// Largest count over the mean.
pub fn max_mean_ratio(counts: &[u64]) -> f64 {
    let sum = total(counts);
    match counts.iter().max() {
        Some(&max) if sum > 0.0 => max as f64 * counts.len() as f64 / sum,
        _ => 1.0,
    }
}

/// Gini coefficient: mean absolute difference over twice the mean.
pub fn gini(counts: &[u64]) -> f64 {
    let sum = total(counts);
    if sum == 0.0 {
        return 0.0;
    }
    // Σ_i Σ_j |x_i - x_j| in O(n log n): over sorted x, Σ_i (2i - n + 1)·x_i, doubled.
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| (2.0 * i as f64 - n + 1.0) * x as f64)
        .sum();
    // 2·weighted = Σ_i Σ_j |x_i - x_j|; G = that / (2 n² μ) = weighted / (n·S).
    weighted / (n * sum)
}

/// The busiest worker's fraction of the total.
pub fn top1_share(counts: &[u64]) -> f64 {
    let sum = total(counts);
    match counts.iter().max() {
        Some(&max) if sum > 0.0 => max as f64 / sum,
        Some(_) => 1.0 / counts.len() as f64,
        None => 0.0,
    }
}

/// Workers whose share is under a tenth of a fair share, 1/(10n).
pub fn idle_workers(counts: &[u64]) -> usize {
    let sum = total(counts);
    if sum == 0.0 {
        return 0;
    }
    let n = counts.len() as f64;
    counts.iter().filter(|&&c| (c as f64 / sum) < 1.0 / (10.0 * n)).count()
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
        let f = Fairness::of(&SEED);
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
        let f = Fairness::of(&[5, 5, 5, 5]);
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
            let f = Fairness::of(&c);
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
        assert_eq!(idle_workers(&[24, 325, 325, 326]), 1);
        assert_eq!(idle_workers(&[25, 325, 325, 325]), 0);
    }

    #[test]
    fn degenerate_inputs() {
        for c in [&[][..], &[0, 0][..]] {
            let f = Fairness::of(c);
            assert_eq!(
                (f.jain, f.cov, f.max_min, f.max_mean, f.gini),
                (1.0, 0.0, 1.0, 1.0, 0.0)
            );
            assert_eq!(f.idle_workers, 0);
        }
        assert_eq!(top1_share(&[]), 0.0);
        assert_eq!(top1_share(&[0, 0]), 0.5);
        assert_eq!(max_min_ratio(&[7]), 1.0);
    }
}
