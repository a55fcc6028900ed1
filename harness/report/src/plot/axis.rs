//! Axes plotters does not have in a usable form: a linear axis with ticks
//! exactly where the data are, and a log axis labelled 1-2-5 in each decade
//! (plotters' own labels only the powers of ten, too few to read a value).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// A linear axis over `range` with ticks exactly at `ticks` (plotters'
/// `with_key_points` wrapper loses the float formatter, so the mesh cannot
/// be drawn with it). Labels come from the chart's label formatter.
#[derive(Debug, Clone)]
pub(crate) struct Ticked {
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
}

impl Ticked {
    pub fn new(range: Range<f64>, ticks: Vec<f64>) -> Ticked {
        Ticked { range, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span <= 0.0 || !span.is_finite() {
            return (limit.0 + limit.1) / 2;
        }
        scale((v - self.range.start) / span, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// The pixel a fraction `frac` of the way along `limit` (which runs either
/// way: y axes run bottom to top), rounded as plotters' own axes round.
fn scale(frac: f64, limit: (i32, i32)) -> i32 {
    let len = limit.1 - limit.0;
    if !frac.is_finite() {
        return if frac > 0.0 { limit.1 } else { limit.0 };
    }
    if len >= 0 {
        limit.0 + (len as f64 * frac + 1e-3).floor() as i32
    } else {
        limit.0 - (-len as f64 * frac + 1e-3).floor() as i32
    }
}

/// A log10 axis over `[lo, hi]` (both positive).
#[derive(Debug, Clone)]
pub(crate) struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    pub fn new(lo: f64, hi: f64) -> LogAxis {
        let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1.0 };
        let hi = if hi > lo && hi.is_finite() { hi } else { lo * 10.0 };
        LogAxis { lo, hi }
    }

    /// `m * 10^k` for each multiplier in `mults` that lies in the range.
    fn series(&self, mults: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        let (k0, k1) = (self.lo.log10().floor() as i32, self.hi.log10().ceil() as i32);
        for k in k0..=k1 {
            for m in mults {
                let v = m * 10f64.powi(k);
                if v >= self.lo * (1.0 - 1e-9) && v <= self.hi * (1.0 + 1e-9) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The labelled values: 1, 2 and 5 in each decade when the axis spans
    /// at most three decades, 1 and 3 up to six, else the powers of ten.
    pub fn ticks(&self) -> Vec<f64> {
        let decades = (self.hi / self.lo).log10();
        let mults: &[f64] = if decades <= 3.0 {
            &[1.0, 2.0, 5.0]
        } else if decades <= 6.0 {
            &[1.0, 3.0]
        } else {
            &[1.0]
        };
        let t = self.series(mults);
        if t.len() >= 2 {
            t
        } else {
            // Less than a decade: 1 to 9 in it.
            self.series(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
        }
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let v = v.max(self.lo * 1e-3);
        scale(
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
            limit,
        )
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
        } else {
            self.ticks()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_follow_1_2_5_and_stay_in_range() {
        let a = LogAxis::new(40.0, 6000.0);
        assert_eq!(a.ticks(), [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]);
        assert_eq!(a.map(&40.0, (0, 100)), 0);
        assert_eq!(a.map(&6000.0, (0, 100)), 100);
        let wide = LogAxis::new(1.0, 1e7);
        assert_eq!(wide.ticks().len(), 8);
        let narrow = LogAxis::new(120.0, 180.0);
        assert_eq!(narrow.ticks(), [150.0]);
    }

    #[test]
    fn ticked_maps_linearly_and_keeps_its_ticks() {
        let t = Ticked::new(0.0..10.0, vec![1.0, 5.0]);
        assert_eq!(t.map(&5.0, (0, 100)), 50);
        assert_eq!(t.range(), 0.0..10.0);
    }
}
