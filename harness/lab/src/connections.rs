//! `connections.csv` (`--connection-log`): every connection's milestones,
//! for the questions the histograms cannot answer, such as whether each
//! connection that arrived during a worker's stall waited out the rest of it.
//!
//! The load generator keeps the milestones in CLOCK_MONOTONIC nanoseconds,
//! the clock the workers stamp with; here they become microseconds since the
//! run's epoch, the origin of workers.csv's `stall_from_ms` and
//! `stall_to_ms`, so the two files can be read together.

use std::path::Path;

use loadgen::Traced;
use records::rows::ConnectionRow;

/// Nanoseconds since `epoch_ns` as microseconds (negative if before it).
fn us_since(epoch_ns: u64, ns: u64) -> f64 {
    (ns as i128 - epoch_ns as i128) as f64 / 1000.0
}

/// The rows of `traced`, in the order the connections started.
pub fn rows(traced: &[Traced], epoch_ns: u64) -> Vec<ConnectionRow> {
    let mut order: Vec<&Traced> = traced.iter().collect();
    order.sort_by_key(|t| t.start_ns);
    order
        .into_iter()
        .map(|t| ConnectionRow {
            worker: t.worker.clone(),
            start_us: us_since(epoch_ns, t.start_ns),
            established_us: us_since(epoch_ns, t.established_ns),
            accepted_us: t.stamps.map(|s| us_since(epoch_ns, s.accepted_ns)),
            responded_us: t.stamps.map(|s| us_since(epoch_ns, s.responded_ns)),
            done_us: us_since(epoch_ns, t.done_ns),
            queue_us: t
                .stamps
                .map(|s| s.accepted_ns.saturating_sub(t.established_ns) as f64 / 1000.0),
            service_us: t
                .stamps
                .map(|s| s.responded_ns.saturating_sub(s.accepted_ns) as f64 / 1000.0),
        })
        .collect()
}

/// Writes `connections.csv` into `dir` (whole or not at all).
pub fn write(dir: &Path, traced: &[Traced], epoch_ns: u64) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let rows = rows(traced, epoch_ns);
    if rows.is_empty() {
        w.write_record([
            "worker",
            "start_us",
            "established_us",
            "accepted_us",
            "responded_us",
            "done_us",
            "queue_us",
            "service_us",
        ])?;
    }
    for r in &rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    records::write_atomic(dir, records::names::CONNECTIONS, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen::Stamps;

    #[test]
    fn rows_are_in_start_order_relative_to_the_epoch() {
        let t = |worker: &str, start_ns: u64, stamps| Traced {
            worker: worker.into(),
            start_ns,
            established_ns: start_ns + 50_000,
            stamps,
            done_ns: start_ns + 900_000,
        };
        let stamped = Stamps {
            accepted_ns: 1_000_000 + 250_000,
            responded_ns: 1_000_000 + 400_000,
        };
        let r = rows(&[t("1", 1_000_000, Some(stamped)), t("0", 500_000, None)], 1_000_000);
        assert_eq!(r[0].worker, "0");
        assert_eq!(
            (r[0].start_us, r[0].established_us, r[0].done_us),
            (-500.0, -450.0, 400.0)
        );
        assert_eq!((r[0].accepted_us, r[0].queue_us), (None, None));
        assert_eq!(r[1].established_us, 50.0);
        assert_eq!(r[1].accepted_us, Some(250.0));
        assert_eq!(r[1].queue_us, Some(200.0));
        assert_eq!(r[1].service_us, Some(150.0));
    }
}
