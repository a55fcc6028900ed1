//! `meta.json`: what a reader needs to trust or reproduce a result: the
//! machine, the kernel and the sysctls that shape accept behaviour, the
//! harness version and git revision, the command line, and the parameters.

use std::fs;

use serde::Serialize;
use serde_json::Value;

/// Sysctls that shape connection handling on loopback.
const SYSCTLS: [&str; 7] = [
    "net.core.somaxconn",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_migrate_req",
];

#[derive(Debug, Serialize)]
pub struct Meta {
    pub harness_version: &'static str,
    pub git_revision: &'static str,
    pub command_line: Vec<String>,
    pub started_at_utc: String,
    pub kernel_release: String,
    pub cpu_count: usize,
    pub cpu_model: String,
    pub sysctls: serde_json::Map<String, Value>,
    /// The run's or runs' parameters: the exact load, the arrival seed.
    pub parameters: Value,
    /// CPU time the load generator used over the measured load (a run's).
    pub loadgen_cpu_ms: Option<f64>,
    /// Peak resident memory of the harness process (load generator and
    /// master) so far, KiB.
    pub harness_peak_rss_kib: u64,
}

impl Meta {
    pub fn collect(started_at_utc: String, parameters: Value) -> Meta {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Meta {
            harness_version: env!("CARGO_PKG_VERSION"),
            git_revision: env!("HARNESS_GIT_REVISION"),
            command_line: std::env::args().collect(),
            started_at_utc,
            kernel_release: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            cpu_count: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu_model: cpu_model(&cpuinfo),
            sysctls: SYSCTLS
                .iter()
                .map(|name| (name.to_string(), sysctl(name).map(Value::String).unwrap_or(Value::Null)))
                .collect(),
            parameters,
            loadgen_cpu_ms: None,
            harness_peak_rss_kib: sys::self_peak_rss_kib(),
        }
    }

    pub fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }
}

fn sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    fs::read_to_string(path)
        .ok()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
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

    #[test]
    fn cpu_model_line() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n"),
            "Some CPU @ 2GHz"
        );
        assert_eq!(cpu_model(""), "unknown");
    }

    #[test]
    fn meta_has_the_sysctls() {
        let m = Meta::collect("t".into(), Value::Null);
        let json: Value = serde_json::from_slice(&m.to_json().unwrap()).unwrap();
        for k in SYSCTLS {
            assert!(json["sysctls"].get(k).is_some(), "{k}");
        }
        assert!(json["kernel_release"].as_str().unwrap().contains('.'));
    }
}
