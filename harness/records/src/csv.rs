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

/// summary.csv: each run's row with its parameter columns (`params`, the
/// same columns for every row) placed after `model` and `workers`.
pub fn summary(rows: &[SummaryRow], params: &[(&str, String)]) -> anyhow::Result<Vec<u8>> {
    let plain = to_csv(rows)?;
    let mut r = ::csv::Reader::from_reader(plain.as_slice());
    let header = r.headers()?.clone();
    let at = header.iter().position(|h| h == "workers").map_or(0, |i| i + 1);
    let splice = |rec: &::csv::StringRecord, extra: Vec<&str>| -> ::csv::StringRecord {
        let mut cells: Vec<&str> = rec.iter().collect();
        let tail = cells.split_off(at);
        cells.extend(extra);
        cells.extend(tail);
        cells.into_iter().collect()
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(&splice(&header, params.iter().map(|(k, _)| *k).collect()))?;
    for rec in r.records() {
        w.write_record(&splice(&rec?, params.iter().map(|(_, v)| v.as_str()).collect()))?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))
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
            conserved: true,
            ..SummaryRow::default()
        };
        let params = [("concurrency", "32".to_string()), ("loop", "closed".to_string())];
        std::fs::write(
            dir.join("summary.csv"),
            summary(std::slice::from_ref(&s), &params).unwrap(),
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        assert!(
            text.starts_with("model,workers,concurrency,loop,connections,"),
            "{text}"
        );
        // The parameter columns are there by name; the row reads back whole.
        assert_eq!(read::<SummaryRow>(&dir.join("summary.csv")).unwrap(), [s]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
