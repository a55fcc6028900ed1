//! Output formats of a run: one module per format. Every file is written
//! atomically (a temporary file in the same directory, then rename), so a run
//! that fails or is killed never leaves a half-written result and never
//! spoils the files of an earlier run.

pub mod csv;
pub mod hlog;
pub mod meta;
pub mod table;
pub mod timeseries;

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
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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
    io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
}

/// Writes `bytes` to `dir/name` atomically.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(&dir.join(name))?;
    f.write_all(bytes).map_err(|e| with_path(e, &dir.join(name)))?;
    f.commit()
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
