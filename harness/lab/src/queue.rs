//! Accept-queue depth of every listener of a run, over time.
//!
//! Why it exists: a model's latency tail and its failures often start in a
//! queue nobody looks at. A stalled reuseport worker's private queue fills
//! while the others stay empty; a shared queue absorbs the same stall. A
//! thread samples every listening socket on the run's port through
//! sock_diag (`sys::diag`) every `--queue-interval` (never slower than
//! `--interval`) during the measured load, streams the samples to
//! `queue.csv` and keeps, per listener, its deepest and mean depth and the
//! time it spent at its limit. Each listener is mapped to the worker that
//! takes connections from it by socket inode (what /proc shows the worker
//! holding).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use records::files::AtomicFile;
use records::rows::QueueRow;

/// What one listener's queue did over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Listener {
    pub max: u32,
    pub sum: u64,
    pub samples: u64,
    /// Samples at (or above) the limit.
    pub full: u64,
    pub limit: u32,
}

impl Listener {
    pub fn mean(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.sum as f64 / self.samples as f64
        }
    }
}

/// What the sampler saw, by listener inode.
#[derive(Debug, Clone, Default)]
pub struct Queues {
    pub listeners: BTreeMap<u64, Listener>,
    /// The sampling interval.
    pub every: Duration,
    /// Samples taken (each of every listener).
    pub samples: u64,
    /// The mean over samples of the depths of all listeners together.
    pub total_mean: f64,
}

impl Queues {
    /// Time at the limit, from the samples that found it so.
    pub fn full_ms(&self, l: &Listener) -> f64 {
        records::round(l.full as f64 * self.every.as_secs_f64() * 1000.0, 3)
    }
}

/// The sampling thread of one run.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<Queues>>,
}

impl Sampler {
    /// Starts sampling the listeners on `port` every `every` into
    /// `dir/queue.csv`, their rows naming the worker `workers` maps their
    /// inode to. `started` is when the measured load began.
    pub fn start(
        port: u16,
        every: Duration,
        dir: &Path,
        workers: BTreeMap<u64, usize>,
        started: Instant,
    ) -> anyhow::Result<Sampler> {
        // Made here, on the calling thread: the socket is in its namespace.
        let mut diag = sys::diag::Diag::new().context("opening a sock_diag socket")?;
        let mut out = csv::Writer::from_writer(
            AtomicFile::create(&dir.join(records::names::QUEUE)).context("creating queue.csv")?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("queue-sampler".into())
            .spawn(move || -> anyhow::Result<Queues> {
                let mut q = Queues {
                    every,
                    ..Queues::default()
                };
                let mut total: u64 = 0;
                let mut next = Instant::now();
                // The last sample is taken after the stop is seen, so the
                // end of the load is in the file.
                loop {
                    let last = flag.load(Ordering::Relaxed);
                    let t_ms = started.elapsed().as_secs_f64() * 1000.0;
                    for l in diag.listeners(port).context("reading the accept queues")? {
                        out.serialize(QueueRow {
                            t_ms: records::round(t_ms, 1),
                            worker: workers.get(&l.inode).copied(),
                            listener_inode: l.inode,
                            depth: l.depth,
                            limit: l.limit,
                        })?;
                        let s = q.listeners.entry(l.inode).or_default();
                        s.max = s.max.max(l.depth);
                        s.sum += u64::from(l.depth);
                        s.samples += 1;
                        s.limit = l.limit;
                        if l.depth >= l.limit {
                            s.full += 1;
                        }
                        total += u64::from(l.depth);
                    }
                    q.samples += 1;
                    if last {
                        break;
                    }
                    next += every;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
                q.total_mean = total as f64 / q.samples.max(1) as f64;
                let file = out.into_inner().map_err(|e| anyhow!("queue.csv: {e}"))?;
                file.commit()?;
                Ok(q)
            })
            .context("starting the queue sampler")?;
        Ok(Sampler { stop, thread })
    }

    /// Takes the last sample, stops, and returns what it saw.
    pub fn finish(self) -> anyhow::Result<Queues> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow!("the queue sampler panicked"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_nobody_accepts_from_fills_and_is_seen_full() {
        let dir = std::env::temp_dir().join(format!("lab-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l = sys::tcp_listener(
            &addr,
            sys::ListenOpts {
                reuseport: false,
                nonblocking: false,
                backlog: 2,
            },
        )
        .unwrap();
        let port = sys::local_addr(std::os::fd::AsFd::as_fd(&l)).unwrap().port();
        let s = Sampler::start(port, Duration::from_millis(5), &dir, BTreeMap::new(), Instant::now()).unwrap();
        // Three handshakes complete (limit 2, a queue reads full above it).
        let _c: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let mut d = sys::diag::Diag::new().unwrap();
        for _ in 0..400 {
            if d.listeners(port).unwrap()[0].depth >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Bounded: a few samples past the fill.
        std::thread::sleep(Duration::from_millis(30));
        let q = s.finish().unwrap();
        assert_eq!(q.listeners.len(), 1);
        let only = q.listeners.values().next().unwrap();
        assert_eq!(only.limit, 2);
        assert!(only.max >= 2 && only.full >= 1, "{only:?}");
        assert!(q.full_ms(only) > 0.0);
        let rows: Vec<QueueRow> = records::csv::read(&dir.join("queue.csv")).unwrap();
        assert_eq!(rows.len() as u64, q.samples);
        assert!(rows.iter().all(|r| r.worker.is_none() && r.limit == 2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
