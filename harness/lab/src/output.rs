//! Where a run's files go, and how a run's own files are written.

use std::path::{Path, PathBuf};

use anyhow::Context;
use records::{names, Meta};

use crate::account::RunResult;
use crate::spec::RunSpec;

/// The output directory: the user's, or `results/<stamp>-<label>`.
/// A default name that exists already (two runs in one second) gets a
/// numbered suffix, so no run overwrites another.
pub fn out_dir(out: Option<PathBuf>, stamp: &str, label: &str) -> PathBuf {
    out.unwrap_or_else(|| {
        let base = Path::new("results").join(format!("{stamp}-{label}"));
        (1..)
            .map(|i| {
                if i == 1 {
                    base.clone()
                } else {
                    PathBuf::from(format!("{}-{i}", base.display()))
                }
            })
            .find(|p| !p.exists())
            .unwrap_or(base)
    })
}

/// Writes a run's three files into `dir`.
pub fn write_run(dir: &Path, result: &RunResult, meta: &Meta) -> anyhow::Result<()> {
    records::write_atomic(dir, names::WORKERS, &records::csv::workers(&result.workers)?)?;
    records::write_atomic(
        dir,
        names::SUMMARY,
        &records::csv::summary(std::slice::from_ref(&result.summary), &result.params)?,
    )?;
    records::write_atomic(dir, names::META, &meta.to_json()?).context("writing meta.json")?;
    Ok(())
}

/// A run's meta.json: the machine, the command, every parameter in force,
/// the load generator's CPU time, and where the run's network stack was
/// with the sysctls in force there.
pub fn run_meta(started_at_utc: String, spec: &RunSpec, result: &RunResult) -> Meta {
    let mut meta = crate::machine::meta(started_at_utc, crate::params::meta(spec));
    meta.loadgen_cpu_ms = Some(result.summary.loadgen_cpu_ms);
    meta.netns = Some(result.netns.clone());
    meta.sysctls = result
        .sysctls
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.clone().map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    meta
}
