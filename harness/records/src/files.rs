//! How every result file is written: atomically (a temporary file in the
//! same directory, then rename), so a run that fails or is killed never
//! leaves a half-written result and never spoils the files of an earlier run.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file written under a temporary name in its directory and renamed into
/// place by [`AtomicFile::commit`]. Dropped before that (the run failed), it
/// is removed: readers only ever see a complete file or the previous one.
pub struct AtomicFile {
    out: BufWriter<File>,
    /// The temporary file, until `commit` moves it into place.
    tmp: Option<PathBuf>,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let out = BufWriter::new(File::create(&tmp).map_err(|e| with_path(e, &tmp))?);
        Ok(AtomicFile {
            out,
            tmp: Some(tmp),
            path: path.to_path_buf(),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        let result = (|| {
            self.out.flush()?;
            self.out.get_ref().sync_all()?;
            match self.tmp.take() {
                Some(tmp) => fs::rename(tmp, &self.path),
                None => Ok(()),
            }
        })();
        result.map_err(|e| with_path(e, &self.path))
    }

    /// Flushes and syncs the temporary file, not yet renamed: after this
    /// only the rename is left, which needs no space.
    fn sync(&mut self) -> io::Result<()> {
        let result = self.out.flush().and_then(|()| self.out.get_ref().sync_all());
        result.map_err(|e| with_path(e, &self.path))
    }
}

/// Writes several files of `dir` that must agree with each other (a
/// sweep's runs.csv and workers.csv): every one is written and synced under
/// its temporary name first, and only then are they renamed into place. A
/// full disk or any other write error therefore replaces none of them.
pub fn write_atomic_group(dir: &Path, files: &[(&str, &[u8])]) -> io::Result<()> {
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let mut f = AtomicFile::create(&dir.join(name))?;
        f.write_all(bytes)?;
        f.sync()?;
        written.push(f);
    }
    for f in written {
        f.commit()?;
    }
    Ok(())
}

impl Write for AtomicFile {
    // Errors name the file (a full disk mid-stream says which file).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).map_err(|e| with_path(e, &self.path))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| with_path(e, &self.path))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        // Retried by write_all; keep it as it is.
        return e;
    }
    // Only the error the kernel gave (an error already named passes as it is).
    if e.raw_os_error().is_some() && matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) {
        return io::Error::new(
            e.kind(),
            format!(
                "writing {}: no space left on its file system ({e}); the files written before it are intact",
                path.display()
            ),
        );
    }
    io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
}

/// Writes `bytes` to `dir/name` atomically.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(&dir.join(name))?;
    // Its errors name the file already.
    f.write_all(bytes)?;
    f.commit()
}

/// Removes the temporary files (`.NAME.tmp`) that a process killed while
/// writing left in `dir` (SIGKILL runs no destructor); the files they were
/// to replace are intact. Best effort.
pub fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Checks, before anything starts, that `dir` can be created and written.
/// Returns whether it had to create it.
pub fn check_writable(dir: &Path) -> Result<bool, String> {
    let existed = dir.is_dir();
    if dir.exists() && !existed {
        return Err(format!("--out {} exists and is not a directory", dir.display()));
    }
    fs::create_dir_all(dir).map_err(|e| format!("--out {} cannot be created: {e}", dir.display()))?;
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
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
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

#[cfg(test)]
mod full_disk_tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_with_the_file() {
        // ENOSPC (28) as the kernel gives it.
        let e = with_path(io::Error::from_raw_os_error(28), Path::new("/r/runs.csv"));
        let text = e.to_string();
        assert!(text.starts_with("writing /r/runs.csv: no space left"), "{text}");
        assert_eq!(
            with_path(e, Path::new("/r/x")).to_string().matches("no space").count(),
            1
        );
    }

    #[test]
    fn temporaries_a_kill_left_are_removed() {
        let dir = std::env::temp_dir().join(format!("harness-temps-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".runs.csv.tmp"), b"half").unwrap();
        fs::write(dir.join("runs.csv"), b"whole").unwrap();
        remove_temporaries(&dir);
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["runs.csv"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
