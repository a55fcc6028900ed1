//! A server process the harness started, and how it is kept on a leash.
//!
//! The server runs in its own process group, so that teardown reaches every
//! worker it forked even if the master forgets them; it gets a signal when
//! the harness dies (PR_SET_PDEATHSIG), so a killed harness leaves nothing
//! behind; and its stdout is read line by line on a thread, because that is
//! where the Node.js servers announce readiness and their own counts.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// Most of a server's stderr kept for error messages.
const STDERR_KEEP: usize = 4096;

pub struct ServerProcess {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Set once the process has been reaped.
    status: Option<ExitStatus>,
    /// Whether stdout reached end of stream (every process holding it exited).
    eof: bool,
    /// Whether `stop` has killed what was left of the process group.
    stopped: bool,
}

impl ServerProcess {
    /// Starts `cmd` as `name` in a process group of its own; `death` is the
    /// signal the server gets if the harness dies first (one it shuts down
    /// cleanly on, so that it takes its workers with it).
    pub fn spawn(name: &str, mut cmd: Command, death: i32) -> anyhow::Result<ServerProcess> {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        sys::die_with_harness(&mut cmd, death);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut err = err;
            let mut buf = [0u8; 1024];
            loop {
                let n = match err.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    // A SIGINT/SIGTERM the harness caught (interrupt.rs).
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let mut kept = keep.lock().unwrap_or_else(|p| p.into_inner());
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(STDERR_KEEP);
                kept.drain(..excess);
            }
        });
        Ok(ServerProcess {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            status: None,
            eof: false,
            stopped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The end of what the server wrote to stderr, on one line.
    pub fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&kept);
        let text = text.trim();
        if text.is_empty() {
            "(nothing on stderr)".into()
        } else {
            format!("stderr: {}", text.lines().collect::<Vec<_>>().join(" | "))
        }
    }

    /// Waits until a stdout line satisfies `want` and returns it; fails if
    /// the server exits or `deadline` passes first.
    pub fn wait_line(&mut self, deadline: Instant, what: &str, want: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        loop {
            if let Some(l) = self.seen.iter().find(|l| want(l)) {
                return Ok(l.clone());
            }
            crate::interrupt::check(&format!("waiting for {} to print {what}", self.name))?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.clamp(Duration::from_millis(1), crate::interrupt::POLL))
            {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!("{} did not print {what} in time; {}", self.name, self.stderr_tail())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.eof = true;
                    // Give the stderr reader a moment to collect the reason.
                    let _ = self.child.wait_timeout(Duration::from_millis(500), || false);
                    bail!("{} exited before it printed {what}; {}", self.name, self.stderr_tail())
                }
            }
        }
    }

    /// An error if the server has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.status = Some(status);
            bail!("{} exited during the run ({status}); {}", self.name, self.stderr_tail());
        }
        Ok(())
    }

    /// Sends `sig` to the server, waits up to `grace` for it to exit and for
    /// its stdout to close (every worker gone), then SIGKILLs whatever is
    /// left of its process group. Returns how it exited; an error if it had
    /// to be killed.
    ///
    /// A SIGINT or SIGTERM of the harness (interrupt.rs) cuts the grace
    /// short: the group is killed at once and the stop fails with
    /// [`crate::interrupt::Interrupted`], since what the server would have
    /// said on its way out is lost.
    pub fn stop(&mut self, sig: i32, grace: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + grace;
        if self.status.is_none() {
            sys::kill(self.pid(), sig)?;
        } else {
            // The master died on its own: nobody will stop what it left.
            sys::kill_group(self.pid(), libc::SIGKILL)?;
        }
        let interrupted = || crate::interrupt::interrupted().is_some();
        let status = self
            .child
            .wait_timeout(deadline.saturating_duration_since(Instant::now()), interrupted)?;
        while !self.eof && !interrupted() {
            match self.lines.recv_timeout(
                deadline
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), crate::interrupt::POLL),
            ) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        if let Err(i) = crate::interrupt::check(&format!("stopping {}", self.name)) {
            sys::kill_group(self.pid(), libc::SIGKILL)?;
            self.stopped = true;
            if self.status.is_none() {
                self.status = Some(self.child.wait()?);
            }
            return Err(i.into());
        }
        // Whatever is left of the group (a worker its master forgot) goes now.
        sys::kill_group(self.pid(), libc::SIGKILL)?;
        self.stopped = true;
        let status = match status {
            Some(s) => s,
            None => {
                let s = self.child.wait()?;
                self.status = Some(s);
                bail!(
                    "{} did not exit within {:?} of signal {sig} and was killed; {}",
                    self.name,
                    grace,
                    self.stderr_tail()
                );
            }
        };
        self.status = Some(status);
        if !self.eof {
            bail!(
                "{}'s workers kept its stdout open {:?} after it exited; they were killed",
                self.name,
                grace
            );
        }
        Ok(status)
    }
}

impl Drop for ServerProcess {
    /// A server not stopped (an error on the way, or a master that died
    /// and left its workers) is killed with its whole group.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = sys::kill_group(self.pid(), libc::SIGKILL);
            if self.status.is_none() {
                let _ = self.child.wait();
            }
        }
    }
}

/// `Child::wait` with a time limit, and a way to give up early.
pub trait WaitTimeout {
    /// The exit status, or `None` if `limit` passed or `give_up` said so first.
    fn wait_timeout(&mut self, limit: Duration, give_up: impl Fn() -> bool) -> std::io::Result<Option<ExitStatus>>;
}

impl WaitTimeout for Child {
    fn wait_timeout(&mut self, limit: Duration, give_up: impl Fn() -> bool) -> std::io::Result<Option<ExitStatus>> {
        // `None`: no limit (Duration::MAX).
        let deadline = Instant::now().checked_add(limit);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) || give_up() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs a short command to completion and returns its stdout; an error with
/// its stderr if it fails.
pub fn output(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
