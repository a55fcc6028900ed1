//! Latency quantiles of one run and estimates over repeated runs; the
//! fairness figures are in [`crate::fairness`].

pub use crate::fairness::{jain, max_min_ratio, show, Fairness};

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

/// The mean of repeated measurements with its spread and a 95% confidence
/// interval, mean ± t(0.975, n−1) · sd / √n (Student's t; sd is the sample
/// standard deviation). With one measurement there is no interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl Estimate {
    /// An estimate as a file records it (`aggregate.csv`), checked: a
    /// confidence interval must hold the mean and have both ends.
    pub fn from_parts(
        n: usize,
        mean: f64,
        sd: Option<f64>,
        ci_low: Option<f64>,
        ci_high: Option<f64>,
    ) -> Result<Estimate, String> {
        match (ci_low, ci_high) {
            (Some(lo), Some(hi)) if !(lo <= mean && mean <= hi) => {
                return Err(format!("the interval [{lo}, {hi}] does not hold the mean {mean}"))
            }
            (Some(_), None) | (None, Some(_)) => return Err("an interval needs both ends".into()),
            _ => {}
        }
        if sd.is_some_and(|s| s < 0.0) {
            return Err(format!("a negative standard deviation ({sd:?})"));
        }
        Ok(Estimate {
            n,
            mean,
            sd,
            ci_low,
            ci_high,
        })
    }

    /// The 95% interval, when there is one.
    pub fn ci(&self) -> Option<(f64, f64)> {
        self.ci_low.zip(self.ci_high)
    }

    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Estimate {
                n,
                mean,
                sd: None,
                ci_low: None,
                ci_high: None,
            });
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let half = t975(n - 1) * sd / (n as f64).sqrt();
        Some(Estimate {
            n,
            mean,
            sd: Some(sd),
            ci_low: Some(mean - half),
            ci_high: Some(mean + half),
        })
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: exact
/// table values to 30, then the usual interpolation in 1/df towards 1.96.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            // t ≈ z + (t30 − z) · 30/df, within 0.002 of the exact value.
            let z = 1.959_964;
            z + (TABLE[29] - z) * 30.0 / df as f64
        }
    }
}

/// Each count as a fraction of the total (0 when the total is 0).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| if total == 0 { 0.0 } else { c as f64 / total as f64 })
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
        assert!((jain(&seed).unwrap() - 0.73).abs() < 0.01);
        assert!((max_min_ratio(&seed).unwrap() - 6.18).abs() < 0.01);
    }

    #[test]
    fn estimate_by_hand() {
        // 10, 12, 14: mean 12, sample sd 2, half-width 4.303 * 2 / sqrt(3).
        let e = Estimate::of(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!((e.n, e.mean, e.sd), (3, 12.0, Some(2.0)));
        let half = 4.303 * 2.0 / 3f64.sqrt();
        assert!((e.ci_low.unwrap() - (12.0 - half)).abs() < 1e-12);
        assert!((e.ci_high.unwrap() - (12.0 + half)).abs() < 1e-12);
        let one = Estimate::of(&[5.0]).unwrap();
        assert_eq!((one.mean, one.sd, one.ci_low), (5.0, None, None));
        assert_eq!(Estimate::of(&[]), None);
        let same = Estimate::of(&[3.0; 4]).unwrap();
        assert_eq!((same.ci_low, same.ci_high), (Some(3.0), Some(3.0)));
        assert_eq!(e.ci(), Some((e.ci_low.unwrap(), e.ci_high.unwrap())));
        assert_eq!(Estimate::from_parts(3, 12.0, Some(2.0), e.ci_low, e.ci_high), Ok(e));
        assert!(Estimate::from_parts(3, 20.0, None, Some(1.0), Some(2.0)).is_err());
        assert!(Estimate::from_parts(3, 1.5, None, Some(1.0), None).is_err());
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(30), 2.042);
        assert!((t975(60) - 2.000).abs() < 0.002, "{}", t975(60));
        assert!((t975(120) - 1.980).abs() < 0.002, "{}", t975(120));
        assert!(t975(100_000) > 1.959 && t975(100_000) < 1.961);
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
        assert_eq!(Quantiles::of(&Histogram::<u64>::new(3).unwrap()), Quantiles::default());
    }
}
