//! `workers.csv` and `summary.csv`: the tidy per-worker and per-run tables,
//! written and read back. Column order is the field order of the rows in
//! [`crate::rows`]; reading goes by column name.

use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rows::{SummaryRow, WorkerRow};

fn to_csv<T: Serialize>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))
}

pub fn workers(rows: &[WorkerRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}

pub fn summary(rows: &[SummaryRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}

/// Every row of the CSV file `path`, by column name.
pub fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut r = ::csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let rows = r
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(worker: usize) -> WorkerRow {
        WorkerRow {
            model: "reuseport".into(),
            workers: 2,
            worker,
            pid: 100 + worker as i32,
            accepted: 10,
            share: 0.5,
            cpu_ms: 1.5,
            p50_us: 1,
            p99_us: 2,
            p999_us: 3,
            max_us: 4,
            listen_inode: Some(77),
            ..WorkerRow::default()
        }
    }

    #[test]
    fn workers_csv_has_the_promised_columns_first() {
        let text = String::from_utf8(workers(&[row(0), row(1)]).unwrap()).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with(
            "model,workers,worker,pid,accepted,share,spurious_wakeups,cpu_ms,p50_us,p99_us,p999_us,max_us"
        ));
        let names: Vec<&str> = header.split(',').collect();
        let values: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(names.len(), values.len());
        let get = |n: &str| values[names.iter().position(|h| *h == n).unwrap()];
        assert_eq!(
            &values[..12],
            [
                "reuseport",
                "2",
                "0",
                "100",
                "10",
                "0.5",
                "0",
                "1.5",
                "1",
                "2",
                "3",
                "4"
            ]
        );
        assert_eq!(get("listen_inode"), "77");
        assert_eq!(get("dispatched"), "", "None is an empty cell");
        assert_eq!(lines.count(), 1);
    }

    #[test]
    fn rows_read_back_as_written() {
        let dir = std::env::temp_dir().join(format!("records-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows = [row(0), row(1)];
        std::fs::write(dir.join("workers.csv"), workers(&rows).unwrap()).unwrap();
        assert_eq!(read::<WorkerRow>(&dir.join("workers.csv")).unwrap(), rows);
        let s = SummaryRow {
            model: "reuseport".into(),
            jain: None,
            max_min_ratio: Some(f64::INFINITY),
            load_loop: "closed".into(),
            conserved: true,
            ..SummaryRow::default()
        };
        std::fs::write(dir.join("summary.csv"), summary(std::slice::from_ref(&s)).unwrap()).unwrap();
        assert_eq!(read::<SummaryRow>(&dir.join("summary.csv")).unwrap(), [s]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
