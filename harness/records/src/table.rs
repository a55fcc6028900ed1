//! A CSV file read whole, its cells addressed by column name: the one table
//! reader of the workspace.
//!
//! Readers (the charts, the report, a sweep resuming) find columns by name,
//! so extra columns are ignored and newer files still load; a cell that is
//! there but malformed is an error naming the file, the line and the column.
//! A sweep also keeps its combined files as tables, so rows of earlier
//! (resumed) runs carry over exactly as they were, and appends to them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use csv::StringRecord;
use serde::Serialize;

/// A CSV table: a header and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Where it was read from, for error messages (none for a new table).
    path: Option<PathBuf>,
    header: Option<StringRecord>,
    rows: Vec<StringRecord>,
}

impl Table {
    /// Reads `path`; `None` if it does not exist. Rows may be shorter than
    /// the header (a missing cell reads as empty).
    pub fn read(path: &Path) -> Result<Option<Table>> {
        if !path.exists() {
            return Ok(None);
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let header: StringRecord = reader
            .headers()
            .with_context(|| format!("reading {}", path.display()))?
            .iter()
            .map(str::trim)
            .collect();
        let rows = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(Table {
            path: Some(path.to_path_buf()),
            header: Some(header),
            rows,
        }))
    }

    /// [`Table::read`], with a missing file read as an empty table.
    pub fn read_or_empty(path: &Path) -> Result<Table> {
        Ok(Table::read(path)?.unwrap_or_else(|| Table {
            path: Some(path.to_path_buf()),
            ..Table::default()
        }))
    }

    fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "(table)".into(), |p| p.display().to_string())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column names (none for a table without a header yet).
    pub fn headers(&self) -> Vec<&str> {
        self.header.as_ref().map_or_else(Vec::new, |h| h.iter().collect())
    }

    /// The rows, as read or appended.
    pub fn rows(&self) -> &[StringRecord] {
        &self.rows
    }

    /// The index of column `name`, if the table has it.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.as_ref()?.iter().position(|h| h == name)
    }

    /// The index of column `name`, or an error naming the file.
    pub fn need(&self, name: &str) -> Result<usize> {
        self.col(name)
            .ok_or_else(|| anyhow!("{}: no column `{name}`", self.name()))
    }

    /// The trimmed cell; empty if the row is short.
    pub fn str(&self, row: usize, col: usize) -> &str {
        self.rows[row].get(col).unwrap_or("").trim()
    }

    /// The cell of an optional column; `None` when missing or empty.
    pub fn opt_str(&self, row: usize, col: Option<usize>) -> Option<&str> {
        col.map(|c| self.str(row, c)).filter(|s| !s.is_empty())
    }

    /// A number (`inf` allowed); `None` for an empty cell or a missing
    /// column; an error naming file, line and column if it does not parse.
    pub fn f64(&self, row: usize, col: Option<usize>) -> Result<Option<f64>> {
        let Some(c) = col else { return Ok(None) };
        let s = self.str(row, c);
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>().map(Some).map_err(|_| self.bad(row, c, s, "a number"))
    }

    /// A whole number; `None` for an empty cell or a missing column.
    pub fn u64(&self, row: usize, col: Option<usize>) -> Result<Option<u64>> {
        let Some(c) = col else { return Ok(None) };
        let s = self.str(row, c);
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<u64>()
            .map(Some)
            .map_err(|_| self.bad(row, c, s, "a whole number"))
    }

    /// A whole number that must be there.
    pub fn need_u64(&self, row: usize, col: usize) -> Result<u64> {
        self.u64(row, Some(col))?
            .ok_or_else(|| anyhow!("{}:{}: column `{}` is empty", self.name(), row + 2, self.headers()[col]))
    }

    /// A number that must be there.
    pub fn need_f64(&self, row: usize, col: usize) -> Result<f64> {
        self.f64(row, Some(col))?
            .ok_or_else(|| anyhow!("{}:{}: column `{}` is empty", self.name(), row + 2, self.headers()[col]))
    }

    fn bad(&self, row: usize, col: usize, value: &str, what: &str) -> anyhow::Error {
        anyhow!(
            "{}:{}: column `{}`: expected {what}, got {value:?}",
            self.name(),
            row + 2,
            self.headers()[col]
        )
    }

    /// Appends serialized rows; their columns must match what is there.
    pub fn extend<T: Serialize>(&mut self, rows: impl IntoIterator<Item = T>) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in rows {
            w.serialize(row)?;
        }
        let bytes = w.into_inner().map_err(|e| anyhow!("csv: {e}"))?;
        self.extend_csv(&bytes, &[])
    }

    /// Appends the rows of a CSV text, each prefixed with `prefix` (whose
    /// column names must already be in the header this table has, or will
    /// be taken as the first columns).
    pub fn extend_csv(&mut self, bytes: &[u8], prefix: &[(&str, String)]) -> Result<()> {
        let mut r = csv::Reader::from_reader(bytes);
        let mut header: StringRecord = prefix.iter().map(|(k, _)| *k).collect();
        header.extend(r.headers()?.iter());
        match &self.header {
            Some(h) if *h != header => bail!("{}: columns changed: {:?} vs {:?}", self.name(), h, header),
            Some(_) => {}
            None => self.header = Some(header),
        }
        for rec in r.records() {
            let mut row: StringRecord = prefix.iter().map(|(_, v)| v.as_str()).collect();
            row.extend(rec?.iter());
            self.rows.push(row);
        }
        Ok(())
    }

    /// The table as CSV text.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        if let Some(h) = &self.header {
            w.write_record(h)?;
        }
        for r in &self.rows {
            w.write_record(r)?;
        }
        w.into_inner().map_err(|e| anyhow!("csv: {e}"))
    }

    /// The run ids whose row says `complete=false` (runs a signal cut short).
    pub fn incomplete_runs(&self) -> BTreeSet<String> {
        match (self.col("run_id"), self.col("complete")) {
            (Some(id), Some(c)) => self
                .rows
                .iter()
                .filter(|r| &r[c] == "false")
                .map(|r| r[id].to_string())
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// Removes every row of the runs `ids`.
    pub fn drop_runs(&mut self, ids: &BTreeSet<String>) {
        if let Some(c) = self.col("run_id") {
            self.rows.retain(|r| !ids.contains(&r[c]));
        }
    }

    /// Adds column `name` right after `after`, with `value` in every row,
    /// unless it is there already (or `after` is not).
    pub fn add_column_after(&mut self, name: &str, after: &str, value: &str) {
        let (None, Some(at)) = (self.col(name), self.col(after)) else {
            return;
        };
        let insert = |r: &StringRecord, v: &str| {
            let mut cells: Vec<&str> = r.iter().collect();
            cells.insert(at + 1, v);
            StringRecord::from(cells)
        };
        self.header = self.header.as_ref().map(|h| insert(h, name));
        self.rows = self.rows.iter().map(|r| insert(r, value)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_keep_columns_consistent() {
        let mut t = Table::default();
        t.extend_csv(b"a,b\n1,2\n", &[("run_id", "r1".into())]).unwrap();
        t.extend_csv(b"a,b\n3,4\n", &[("run_id", "r2".into())]).unwrap();
        assert_eq!(
            String::from_utf8(t.to_bytes().unwrap()).unwrap(),
            "run_id,a,b\nr1,1,2\nr2,3,4\n"
        );
        assert!(t.extend_csv(b"a,c\n5,6\n", &[("run_id", "r3".into())]).is_err());
    }

    #[test]
    fn an_incomplete_run_is_dropped_and_an_old_table_gains_the_column() {
        let mut t = Table::default();
        t.extend_csv(b"conserved,complete\ntrue,true\n", &[("run_id", "r1".into())])
            .unwrap();
        t.extend_csv(b"conserved,complete\ntrue,false\n", &[("run_id", "r2".into())])
            .unwrap();
        let cut = t.incomplete_runs();
        assert_eq!(cut.iter().collect::<Vec<_>>(), ["r2"]);
        t.drop_runs(&cut);
        assert_eq!(
            String::from_utf8(t.to_bytes().unwrap()).unwrap(),
            "run_id,conserved,complete\nr1,true,true\n"
        );
        // A sweep written before the column: every row was complete.
        let mut old = Table::default();
        old.extend_csv(b"conserved,err\ntrue,0\n", &[("run_id", "r1".into())])
            .unwrap();
        old.add_column_after("complete", "conserved", "true");
        old.add_column_after("complete", "conserved", "true");
        assert_eq!(
            String::from_utf8(old.to_bytes().unwrap()).unwrap(),
            "run_id,conserved,complete,err\nr1,true,true,0\n"
        );
        assert!(old.incomplete_runs().is_empty());
    }

    #[test]
    fn cells_are_read_by_name_and_bad_ones_named_with_their_line() {
        let dir = std::env::temp_dir().join(format!("records-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        std::fs::write(&path, "x,n,f\na,1,inf\nb,,2.5\nc,zz\n").unwrap();
        let t = Table::read(&path).unwrap().unwrap();
        let (n, f) = (t.need("n").unwrap(), t.need("f").unwrap());
        assert_eq!(t.need_u64(0, n).unwrap(), 1);
        assert_eq!(t.f64(0, Some(f)).unwrap(), Some(f64::INFINITY));
        assert_eq!(t.u64(1, Some(n)).unwrap(), None, "empty");
        assert_eq!(t.f64(2, Some(f)).unwrap(), None, "short row");
        let e = t.u64(2, Some(n)).unwrap_err().to_string();
        assert!(
            e.ends_with("t.csv:4: column `n`: expected a whole number, got \"zz\""),
            "{e}"
        );
        assert!(t
            .need("missing")
            .unwrap_err()
            .to_string()
            .contains("no column `missing`"));
        assert!(Table::read(&dir.join("none.csv")).unwrap().is_none());
        assert!(Table::read_or_empty(&dir.join("none.csv")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
