//! Fairness and latency figures of one run, computed from the workers' counts
//! and the load generator's histograms.

pub use loadgen::fairness::{cov, jain, max_min_ratio, Fairness};

use hdrhistogram::Histogram;

/// Latency quantiles in microseconds (0 for an empty histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quantiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Quantiles {
    pub fn of(h: &Histogram<u64>) -> Quantiles {
        if h.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Each count as a fraction of the total (0 when the total is 0).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_one() {
        let s = shares(&[1, 1, 2]);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(s[2], 0.5);
        assert_eq!(shares(&[0, 0]), vec![0.0, 0.0]);
    }

    #[test]
    fn seed_table_fairness() {
        let seed = [14561, 8329, 2356, 4885];
        assert!((jain(&seed) - 0.73).abs() < 0.01);
        assert!((max_min_ratio(&seed) - 6.18).abs() < 0.01);
    }

    #[test]
    fn quantiles_of_known_values() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let q = Quantiles::of(&h);
        assert!((499..=501).contains(&q.p50), "{q:?}");
        assert!((989..=991).contains(&q.p99), "{q:?}");
        assert_eq!(q.max, 1000);
        assert_eq!(
            Quantiles::of(&Histogram::<u64>::new(3).unwrap()),
            Quantiles::default()
        );
    }
}
