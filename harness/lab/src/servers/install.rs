//! Finds a server's binary, installing its Debian package with apt-get when
//! it is missing, and says so: a researcher should see that the harness
//! changed the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::WaitTimeout;

use anyhow::{bail, Context};

/// Where to look besides PATH (nginx lives in /usr/sbin, often not on PATH).
const EXTRA_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The path of `binary`, on PATH or in the sbin directories.
pub fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why `binary` can be neither found nor installed by [`ensure`] (not
/// root, or no apt-get), if so; `None` when it is there or can be installed.
/// Reads, never changes anything: what `harness doctor` and the checks
/// before a run ask.
pub fn unavailable(binary: &str, package: &str) -> Option<String> {
    if find(binary).is_some() {
        return None;
    }
    if sys::geteuid() != 0 {
        return Some(format!(
            "{binary} is not installed and installing it needs root: run `apt-get install {package}` first"
        ));
    }
    if find("apt-get").is_none() {
        return Some(format!(
            "{binary} is not installed and this machine has no apt-get: install {package} first"
        ));
    }
    None
}

/// The path of `binary`; when missing, installs Debian's `package` with
/// apt-get (as root only), printing what it does on stderr.
pub fn ensure(binary: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = find(binary) {
        return Ok(p);
    }
    if let Some(why) = unavailable(binary, package) {
        bail!("{why}");
    }
    apt_install(binary, package)?;
    find(binary).with_context(|| format!("apt-get installed {package} but {binary} is still not found"))
}

/// Makes sure `path` exists (a plugin a server loads), installing Debian's
/// `package` with apt-get (as root only) when it does not.
pub fn ensure_file(path: &str, package: &str) -> anyhow::Result<()> {
    if Path::new(path).exists() {
        return Ok(());
    }
    if sys::geteuid() != 0 || find("apt-get").is_none() {
        bail!("{path} is missing: install {package} first (apt-get install {package}, as root)");
    }
    apt_install(path, package)?;
    if !Path::new(path).exists() {
        bail!("apt-get installed {package} but {path} is still missing");
    }
    Ok(())
}

/// `apt-get update; apt-get install -y package`, said on stderr, with no
/// system service started by the package.
fn apt_install(what: &str, package: &str) -> anyhow::Result<()> {
    eprintln!(
        "{what} not found: installing Debian's {package} with apt-get (apt-get update; apt-get install -y {package})"
    );
    let _policy = NoServiceStarts::new();
    for args in [&["update", "-qq"][..], &["install", "-y", "-qq", package][..]] {
        let mut child = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .spawn()
            .with_context(|| format!("running apt-get {}", args.join(" ")))?;
        // A SIGINT/SIGTERM of the harness stops apt-get as a Ctrl-C would.
        let waited = child.wait_timeout(Duration::MAX, || crate::interrupt::interrupted().is_some())?;
        let Some(status) = waited else {
            let _ = sys::kill(child.id() as i32, libc::SIGTERM);
            let _ = child.wait();
            crate::interrupt::check(&format!("installing {package} with apt-get"))?;
            bail!("apt-get {} was stopped", args.join(" "));
        };
        if !status.success() {
            bail!(
                "apt-get {} failed ({status}): install {package} by hand",
                args.join(" ")
            );
        }
    }
    Ok(())
}

/// Debian's policy-rc.d hook: while it exits 101, a package's postinst
/// does not start its system service (Apache, HAProxy, lighttpd and h2o
/// would otherwise start on port 80 and keep running after the harness).
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// A policy-rc.d that refuses every service start, written for the length
/// of an installation when the machine has none, and removed on drop.
struct NoServiceStarts(bool);

impl NoServiceStarts {
    fn new() -> NoServiceStarts {
        if Path::new(POLICY_RC_D).exists() {
            return NoServiceStarts(false);
        }
        use std::os::unix::fs::PermissionsExt;
        let made = std::fs::write(
            POLICY_RC_D,
            "#!/bin/sh\n# harness: no service starts during its apt-get install\nexit 101\n",
        )
        .and_then(|()| std::fs::set_permissions(POLICY_RC_D, std::fs::Permissions::from_mode(0o755)))
        .is_ok();
        if made {
            eprintln!("(a temporary {POLICY_RC_D} keeps the package's system service from starting)");
        } else {
            eprintln!("warning: could not write {POLICY_RC_D}: the package's system service may start; stop it with `service NAME stop`");
        }
        NoServiceStarts(made)
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}
