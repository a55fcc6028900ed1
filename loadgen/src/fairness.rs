//! How evenly connections were spread over workers.
//!
//! Pure functions over per-worker counts, so that the binary, the harness and
//! the tests all compute the same figures the seed article quotes (Jain's
//! index 0.73 and max/min 6.2 for 14561 / 8329 / 2356 / 4885).
//!
//! Degenerate inputs: an empty or all-zero list is "perfectly even" (Jain 1.0,
//! CoV 0.0, max/min 1.0); a list with a zero and a non-zero count has
//! max/min = `f64::INFINITY`.

/// Jain's fairness index, (Σx)² / (n·Σx²): 1.0 when all equal, 1/n when one
/// worker got everything.
pub fn jain(counts: &[u64]) -> f64 {
    let sum: f64 = counts.iter().map(|&c| c as f64).sum();
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
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u64; 4] = [14561, 8329, 2356, 4885];

    #[test]
    fn jain_bounds() {
        assert_eq!(jain(&[5, 5, 5, 5]), 1.0);
        assert_eq!(jain(&[1, 0, 0, 0]), 0.25);
        assert_eq!(jain(&[]), 1.0);
        assert_eq!(jain(&[0, 0]), 1.0);
        assert!((jain(&SEED) - 0.73).abs() < 0.005, "{}", jain(&SEED));
    }

    #[test]
    fn max_min() {
        assert!(
            (max_min_ratio(&SEED) - 6.18).abs() < 0.005,
            "{}",
            max_min_ratio(&SEED)
        );
        assert_eq!(max_min_ratio(&[3, 0]), f64::INFINITY);
        assert_eq!(max_min_ratio(&[0, 0]), 1.0);
        assert_eq!(max_min_ratio(&[]), 1.0);
        assert_eq!(max_min_ratio(&[7]), 1.0);
    }

    #[test]
    fn coefficient_of_variation() {
        assert_eq!(cov(&[4, 4, 4]), 0.0);
        // mean 2, population stddev 2.
        assert!((cov(&[0, 4, 0, 4]) - 1.0).abs() < 1e-12);
        assert_eq!(cov(&[]), 0.0);
        assert_eq!(cov(&[0, 0]), 0.0);
        let c = cov(&SEED);
        assert!(c > 0.5 && c < 0.7, "{c}");
    }
}
