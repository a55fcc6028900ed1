//! Worker faults injected during a run: what each accept model loses when a
//! worker dies or is replaced.
//!
//! pm2 and Node's cluster exist because workers die and get reloaded, and the
//! kernel answers differently per model: a worker killed while it holds its
//! own SO_REUSEPORT socket takes the connections queued on that socket with
//! it (reset, unless net.ipv4.tcp_migrate_req moves them), while a shared
//! queue outlives any one worker. Three faults:
//!
//! - `--kill-worker IDX@T` SIGKILLs worker IDX T after the measured load began
//!   (repeatable);
//! - `--respawn` starts a replacement for each killed worker at once, as pm2
//!   and cluster do;
//! - `--rolling-restart AT` replaces every worker one after another from AT,
//!   as `pm2 reload` does: the replacement starts, and once it is ready the
//!   old worker retires gracefully (it finishes its connection, closes its
//!   listening socket and exits).
//!
//! Replacements are forked with the fleet, before the load generator's
//! threads exist, and wait on a channel until needed; a replacement is a new
//! worker with its own index (its responses name it), so every connection
//! stays attributed to the process that served it. What happened when is
//! kept as the rows of `faults.csv` ([`Injector::events`]); the load
//! generator's failures by class are in the run's summary as always.

use std::io;
use std::time::Duration;

use records::rows::FaultRow;

use crate::model::Model;
use crate::supervise::{Fleet, FleetKind};

/// One `--kill-worker IDX@T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub worker: usize,
    /// Since the measured load began.
    pub at: Duration,
}

impl std::str::FromStr for Kill {
    type Err = String;

    fn from_str(s: &str) -> Result<Kill, String> {
        let (idx, at) = s
            .split_once('@')
            .ok_or_else(|| format!("--kill-worker '{s}': expected IDX@T, e.g. 1@2s"))?;
        let worker = idx
            .parse()
            .map_err(|_| format!("--kill-worker '{s}': worker index '{idx}' is not a whole number"))?;
        let at = records::units::parse_duration(at).map_err(|e| format!("--kill-worker '{s}': {e}"))?;
        Ok(Kill { worker, at })
    }
}

/// The faults of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub kills: Vec<Kill>,
    pub respawn: bool,
    pub rolling_restart: Option<Duration>,
}

impl Faults {
    pub fn is_empty(&self) -> bool {
        self.kills.is_empty() && self.rolling_restart.is_none()
    }

    /// Replacements to fork up front.
    pub fn spares(&self, workers: usize) -> usize {
        let respawned = if self.respawn { self.kills.len() } else { 0 };
        respawned + self.rolling_restart.map_or(0, |_| workers)
    }

    /// Why these faults cannot run with this fleet, in one line.
    pub fn check(&self, model: Option<Model>, workers: usize, fleet: FleetKind) -> Result<(), String> {
        if self.is_empty() {
            return if self.respawn {
                Err("--respawn needs --kill-worker: it replaces the workers killed".into())
            } else {
                Ok(())
            };
        }
        // Every model's workers can be replaced: a shared listener is
        // inherited, a reuseport socket opened by the replacement, a
        // dispatcher's channel made up front.
        let Some(_) = model else {
            return Err(
                "--kill-worker, --respawn and --rolling-restart work on the harness's own fleets (--model)".into(),
            );
        };
        if fleet != FleetKind::Processes {
            return Err(format!(
                "--kill-worker and --rolling-restart need --fleet processes (got {})",
                fleet.name()
            ));
        }
        for k in &self.kills {
            if k.worker >= workers {
                return Err(format!(
                    "--kill-worker {}@{:?}: there are only {workers} workers (0 to {})",
                    k.worker,
                    k.at,
                    workers - 1
                ));
            }
        }
        Ok(())
    }
}

/// A rolling restart's progress.
#[derive(Debug, Clone, Copy)]
enum Rolling {
    /// Next: start the replacement of this worker.
    Start(usize),
    /// The replacement `new` of `old` was started; retire `old` once `new` is ready.
    Waiting {
        old: usize,
        new: usize,
    },
    Done,
}

/// Carries out [`Faults`] on a fleet, called at every sample of the run.
pub struct Injector {
    kills: Vec<Kill>,
    respawn: bool,
    rolling_at: Option<Duration>,
    rolling: Rolling,
    /// What happened when: the rows of `faults.csv`.
    pub events: Vec<FaultRow>,
}

impl Injector {
    pub fn new(faults: &Faults) -> Injector {
        let mut kills = faults.kills.clone();
        kills.sort_by_key(|k| std::cmp::Reverse(k.at));
        Injector {
            kills,
            respawn: faults.respawn,
            rolling_at: faults.rolling_restart,
            rolling: Rolling::Start(0),
            events: Vec::new(),
        }
    }

    /// Does what is due at `now` (since the measured load began).
    pub fn tick(&mut self, fleet: &mut Fleet, now: Duration) -> io::Result<()> {
        let ms = now.as_secs_f64() * 1000.0;
        while self.kills.last().is_some_and(|k| k.at <= now) {
            let Some(k) = self.kills.pop() else { break };
            let pid = fleet.kill_worker(k.worker)?;
            self.push(ms, k.worker, pid, "killed", None);
            if self.respawn {
                self.start_replacement(fleet, ms, k.worker)?;
            }
        }
        if self.rolling_at.is_some_and(|at| at <= now) {
            self.roll(fleet, ms)?;
        }
        Ok(())
    }

    fn roll(&mut self, fleet: &mut Fleet, ms: f64) -> io::Result<()> {
        match self.rolling {
            Rolling::Start(old) if old < fleet.workers() => {
                if let Some(new) = self.start_replacement(fleet, ms, old)? {
                    self.rolling = Rolling::Waiting { old, new };
                } else {
                    self.rolling = Rolling::Done;
                }
            }
            Rolling::Start(_) => self.rolling = Rolling::Done,
            Rolling::Waiting { old, new } => {
                let ready = fleet
                    .counters
                    .slot(new)
                    .ready
                    .load(std::sync::atomic::Ordering::Acquire)
                    == 1;
                if ready {
                    let pid = fleet.retire_worker(old)?;
                    self.push(ms, old, pid, "retired", None);
                    self.rolling = Rolling::Start(old + 1);
                }
            }
            Rolling::Done => {}
        }
        Ok(())
    }

    fn start_replacement(&mut self, fleet: &mut Fleet, ms: f64, old: usize) -> io::Result<Option<usize>> {
        let Some(new) = fleet.activate_spare()? else {
            return Ok(None);
        };
        let pid = fleet.process_of(new);
        self.push(ms, new, pid, "started", Some(old));
        Ok(Some(new))
    }

    fn push(&mut self, t_ms: f64, worker: usize, pid: i32, event: &'static str, replaces: Option<usize>) {
        self.events.push(FaultRow {
            t_ms: (t_ms * 1000.0).round() / 1000.0,
            worker,
            pid,
            event: event.to_string(),
            replaces,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_parse_and_bad_ones_name_the_value() {
        assert_eq!(
            "1@2s".parse::<Kill>(),
            Ok(Kill {
                worker: 1,
                at: Duration::from_secs(2)
            })
        );
        assert_eq!("0@250ms".parse::<Kill>().unwrap().at, Duration::from_millis(250));
        for bad in ["1", "x@1s", "1@", "1@soon", "-1@1s", "@1s"] {
            let e = bad.parse::<Kill>().unwrap_err();
            assert!(e.contains(bad), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn checks_refuse_what_cannot_run() {
        let kill = |w| Faults {
            kills: vec![Kill {
                worker: w,
                at: Duration::from_secs(1),
            }],
            ..Faults::default()
        };
        let p = FleetKind::Processes;
        assert!(kill(3).check(Some(Model::Reuseport), 4, p).is_ok());
        assert!(kill(4)
            .check(Some(Model::Reuseport), 4, p)
            .unwrap_err()
            .contains("only 4 workers"));
        let respawn = Faults {
            respawn: true,
            ..kill(0)
        };
        for m in Model::ALL {
            assert!(kill(0).check(Some(m), 4, p).is_ok(), "{m}");
            assert!(
                respawn.check(Some(m), 4, p).is_ok(),
                "{m}: every model's workers can be replaced"
            );
        }
        assert!(respawn
            .check(Some(Model::SharedBlocking), 4, FleetKind::Threads)
            .is_err());
        assert!(respawn.check(None, 4, p).is_err());
        let alone = Faults {
            respawn: true,
            ..Faults::default()
        };
        assert!(alone
            .check(Some(Model::Reuseport), 4, p)
            .unwrap_err()
            .contains("--kill-worker"));
        assert_eq!(respawn.spares(4), 1);
        let rolling = Faults {
            rolling_restart: Some(Duration::from_secs(1)),
            ..respawn
        };
        assert_eq!(rolling.spares(4), 5);
    }
}
