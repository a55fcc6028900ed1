//! Output formats of a run: one module per format. Every file is written
//! atomically (a temporary file in the same directory, then rename), so a run
//! that fails or is killed never leaves a half-written result and never
//! spoils the files of an earlier run.

pub mod csv;
pub mod hlog;
pub mod meta;
pub mod table;
pub mod timeseries;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `dir/name` atomically.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {}: {e}", dir.join(name).display()),
        )
    })
}

/// Checks, before anything starts, that `dir` can be created and written.
/// Returns whether it had to create it.
pub fn check_writable(dir: &Path) -> Result<bool, String> {
    let existed = dir.is_dir();
    if dir.exists() && !existed {
        return Err(format!(
            "--out {} exists and is not a directory",
            dir.display()
        ));
    }
    fs::create_dir_all(dir)
        .map_err(|e| format!("--out {} cannot be created: {e}", dir.display()))?;
    let probe = dir.join(".harness-write-probe");
    let res = fs::write(&probe, b"probe");
    let _ = fs::remove_file(&probe);
    if let Err(e) = res {
        if !existed {
            let _ = fs::remove_dir(dir);
        }
        return Err(format!("--out {} is not writable: {e}", dir.display()));
    }
    Ok(!existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("harness-export-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_atomic(&dir, "a.csv", b"one").unwrap();
        write_atomic(&dir, "a.csv", b"two").unwrap();
        assert_eq!(fs::read(dir.join("a.csv")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_writable_rejects_a_file() {
        let f = std::env::temp_dir().join(format!("harness-notdir-{}", std::process::id()));
        fs::write(&f, b"x").unwrap();
        let err = check_writable(&f).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
        fs::remove_file(&f).unwrap();
    }
}
