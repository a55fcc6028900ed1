//! `timeseries.csv`: each worker's counts sampled every interval while the
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

use serde::{Deserialize, Serialize};

use crate::files::AtomicFile;

/// The header of `timeseries.csv`.
pub const HEADER: &str = "t_ms,worker,accepted,requests,spurious_wakeups,active";

/// One worker in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesRow {
    /// End of the interval, ms since the measured load began.
    pub t_ms: f64,
    pub worker: usize,
    /// Gained during the interval.
    pub accepted: u64,
    pub requests: u64,
    pub spurious_wakeups: u64,
    /// Open at the sample (a gauge).
    pub active: u64,
}

/// Streams rows to `timeseries.csv`.
pub struct TimeseriesWriter {
    out: AtomicFile,
}

impl TimeseriesWriter {
    /// Starts the file (under a temporary name) with its header.
    pub fn create(path: &Path) -> io::Result<TimeseriesWriter> {
        let mut out = AtomicFile::create(path)?;
        writeln!(out, "{HEADER}")?;
        Ok(TimeseriesWriter { out })
    }

    /// Appends one row.
    pub fn write(&mut self, r: &TimeseriesRow) -> io::Result<()> {
        writeln!(
            self.out,
            "{:.1},{},{},{},{},{}",
            r.t_ms, r.worker, r.accepted, r.requests, r.spurious_wakeups, r.active
        )
    }

    /// Moves the complete file into place.
    pub fn finish(self) -> io::Result<()> {
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_the_promised_form_and_read_back() {
        let dir = std::env::temp_dir().join(format!("records-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeseries.csv");
        let rows = [
            TimeseriesRow {
                t_ms: 100.0,
                worker: 0,
                accepted: 5,
                requests: 10,
                spurious_wakeups: 0,
                active: 1,
            },
            TimeseriesRow {
                t_ms: 200.04,
                worker: 1,
                accepted: 4,
                requests: 8,
                spurious_wakeups: 2,
                active: 0,
            },
        ];
        let mut w = TimeseriesWriter::create(&path).unwrap();
        for r in &rows {
            w.write(r).unwrap();
        }
        assert!(!path.exists(), "not in place before finish");
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{HEADER}\n100.0,0,5,10,0,1\n200.0,1,4,8,2,0\n"));
        let back: Vec<TimeseriesRow> = crate::csv::read(&path).unwrap();
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1].t_ms, 200.0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
