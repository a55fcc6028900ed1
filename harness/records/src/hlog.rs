//! HdrHistogram interval logs (`.hlog`): the standard text format of
//! HdrHistogram's log tools (HistogramLogProcessor, HdrHistogramVisualizer),
//! one line per histogram, each histogram V2-serialised, deflate-compressed
//! and base64-encoded.
//!
//! A run writes two: `latency.hlog`, one untagged histogram per interval of
//! the corrected total latency (the series the log tools plot), and
//! `histograms.hlog`, the whole run's histograms, one tagged line each
//! (`total`, `connect`, `worker3-total`, ...), so runs can be merged later
//! without losing precision. Files are written to a temporary name and
//! renamed when complete.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::files::AtomicFile;

/// Writes one interval log.
pub struct HlogWriter {
    file: AtomicFile,
    serializer: V2DeflateSerializer,
}

impl HlogWriter {
    /// Starts `path` (as a temporary file) with the header: a comment, the
    /// log format version, StartTime and BaseTime (both `start`, so interval
    /// timestamps are seconds since the run began), and the column legend.
    pub fn create(path: &Path, start: SystemTime, comment: &str) -> io::Result<HlogWriter> {
        let mut file = AtomicFile::create(path)?;
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut file, &mut serializer)?;
        writeln!(
            file,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter { file, serializer })
    }

    /// Appends one histogram covering `[start, start + length)` since the
    /// run began. Tags may not contain `,`, space or newline.
    pub fn write(
        &mut self,
        tag: Option<&str>,
        start: Duration,
        length: Duration,
        h: &Histogram<u64>,
    ) -> io::Result<()> {
        let tag = match tag {
            Some(t) => Some(Tag::new(t).ok_or_else(|| io::Error::other(format!("bad hlog tag {t:?}")))?),
            None => None,
        };
        // A builder with no headers configured writes nothing before the line.
        IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.file, &mut self.serializer)?
            .write_histogram(h, start, length, tag)
            .map_err(|e| io::Error::other(format!("writing an hlog line: {e}")))
    }

    /// Moves the complete log into place.
    pub fn finish(self) -> io::Result<()> {
        self.file.commit()
    }
}

/// One histogram read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedHistogram {
    pub tag: Option<String>,
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// Reads every histogram of a log, in file order.
pub fn read(path: &Path) -> io::Result<Vec<LoggedHistogram>> {
    let bytes = std::fs::read(path)?;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| io::Error::other(format!("{}: {e:?}", path.display())))?;
        if let LogEntry::Interval(ilh) = entry {
            let raw = STANDARD
                .decode(ilh.encoded_histogram())
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            let histogram: Histogram<u64> = deserializer
                .deserialize(&mut &raw[..])
                .map_err(|e| io::Error::other(format!("{}: {e:?}", path.display())))?;
            out.push(LoggedHistogram {
                tag: ilh.tag().map(|t| t.as_str().to_string()),
                start: ilh.start_timestamp(),
                length: ilh.duration(),
                histogram,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn log_round_trips_with_tags_and_totals() {
        let dir = std::env::temp_dir().join(format!("harness-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latency.hlog");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut w = HlogWriter::create(&path, start, "test log").unwrap();
        let a = hist(&[100, 200, 300]);
        let b = hist(&[5_000; 7]);
        w.write(None, Duration::ZERO, Duration::from_millis(100), &a).unwrap();
        w.write(None, Duration::from_millis(100), Duration::from_millis(100), &b)
            .unwrap();
        w.write(Some("worker0-total"), Duration::ZERO, Duration::from_millis(200), &a)
            .unwrap();
        assert!(!path.exists(), "visible before finish");
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#[StartTime: 1800000000.000"), "{text}");
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\""));
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].histogram.len(), 3);
        assert_eq!(back[0].histogram.max(), a.max());
        assert_eq!(back[1].histogram.len(), 7);
        assert_eq!(back[1].start, Duration::from_millis(100));
        assert_eq!(back[2].tag.as_deref(), Some("worker0-total"));
        assert_eq!(back[2].histogram.value_at_quantile(0.5), a.value_at_quantile(0.5));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
