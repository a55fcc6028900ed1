//! `timeseries.csv`: each worker's counters sampled every interval while the
//! load runs, so a reader sees how the spread moved over time (a stalled
//! worker's gap, the herd settling) and not only the final counts.
//!
//! One row per worker per sample: `t_ms` (end of the interval, since the
//! measured load began), the connections it accepted, the requests it
//! answered and its spurious wakeups *during* the interval (so the columns
//! sum to the run's totals), and `active`, the connections it had open at the
//! sample. Rows stream to a temporary file, renamed into place at the end.

use std::io::{self, Write};
use std::path::Path;

use super::AtomicFile;

use crate::counters::Snapshot;

pub struct TimeseriesWriter {
    out: AtomicFile,
    last: Vec<Snapshot>,
}

impl TimeseriesWriter {
    /// Starts the file; `baseline` is every worker's counters when the
    /// measured load began (after any warm-up).
    pub fn create(path: &Path, baseline: Vec<Snapshot>) -> io::Result<TimeseriesWriter> {
        let mut out = AtomicFile::create(path)?;
        writeln!(out, "t_ms,worker,accepted,requests,spurious_wakeups,active")?;
        Ok(TimeseriesWriter { out, last: baseline })
    }

    /// Writes one sample taken `t_ms` after the load began.
    pub fn sample(&mut self, t_ms: f64, now: &[Snapshot]) -> io::Result<()> {
        for (i, (n, l)) in now.iter().zip(&self.last).enumerate() {
            writeln!(
                self.out,
                "{t_ms:.1},{i},{},{},{},{}",
                n.accepted - l.accepted,
                n.requests - l.requests,
                n.spurious_wakeups - l.spurious_wakeups,
                n.active
            )?;
        }
        self.last = now.to_vec();
        Ok(())
    }

    /// Moves the complete file into place.
    pub fn finish(self) -> io::Result<()> {
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(accepted: u64, active: u64) -> Snapshot {
        Snapshot {
            accepted,
            requests: accepted * 2,
            active,
            ..Snapshot::default()
        }
    }

    #[test]
    fn rows_are_deltas_that_sum_to_the_totals() {
        let dir = std::env::temp_dir().join(format!("harness-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeseries.csv");
        let mut w = TimeseriesWriter::create(&path, vec![snap(10, 0), snap(5, 0)]).unwrap();
        w.sample(100.0, &[snap(15, 1), snap(5, 0)]).unwrap();
        w.sample(200.0, &[snap(22, 0), snap(9, 1)]).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], "t_ms,worker,accepted,requests,spurious_wakeups,active");
        assert_eq!(rows[1], "100.0,0,5,10,0,1");
        assert_eq!(rows[2], "100.0,1,0,0,0,0");
        assert_eq!(rows[3], "200.0,0,7,14,0,0");
        assert_eq!(rows[4], "200.0,1,4,8,0,1");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
