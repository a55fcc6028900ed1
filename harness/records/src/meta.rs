//! `meta.json`: what a reader needs to trust or reproduce a result: the
//! machine, the kernel and the sysctls that shape accept behaviour, the
//! harness version and git revision, the command line, and the parameters.
//! (What fills it in, by reading the machine, is the runner's.)

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub harness_version: String,
    pub git_revision: String,
    pub command_line: Vec<String>,
    pub started_at_utc: String,
    pub kernel_release: String,
    pub cpu_count: usize,
    pub cpu_model: String,
    /// The sysctls that shape the result, as in force for the run: in its
    /// own network namespace, those of that namespace (with any the run set).
    pub sysctls: serde_json::Map<String, Value>,
    /// Where the run's network stack was: `own` (a namespace made for the
    /// run: the kernel's counters are the run's alone) or `host (<why>)`
    /// (machine-wide counters). `None` for a sweep's own record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The run's or runs' parameters: the exact load, the arrival seed.
    pub parameters: Value,
    /// CPU time the load generator used over the measured load (a run's).
    pub loadgen_cpu_ms: Option<f64>,
    /// Peak resident memory of the harness process (load generator and
    /// master) so far, KiB.
    pub harness_peak_rss_kib: u64,
}

impl Meta {
    pub fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }

    /// Reads a `meta.json`.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Meta> {
        use anyhow::Context;
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// UTC now as (`2026-11-26T17:30:05Z`, `20261126-173005`).
pub fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc(secs)
}

fn utc(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_713_005).1, "20261126-171005");
    }
}
