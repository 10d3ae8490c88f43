//! A plain-text table as the Kafka tools print one: a header of upper-case column names,
//! one row per line, columns padded to their widest cell and two spaces apart; numbers
//! right-aligned, text left-aligned, the last column not padded.

use std::io::Write;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table being filled.
#[derive(Debug)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table of these columns (name and alignment).
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().take(self.columns.len()).collect();
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// Writes the header and the rows.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .fold(name.chars().count(), usize::max)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|(n, _)| (*n).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let (width, last) = (widths[i], i + 1 == row.len());
                if i > 0 {
                    line.push_str("  ");
                }
                match self.columns[i].1 {
                    Align::Right => line.push_str(&format!("{cell:>width$}")),
                    Align::Left if last => line.push_str(cell),
                    Align::Left => line.push_str(&format!("{cell:<width$}")),
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// An optional value as a cell: `-` when missing.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A text cell: `-` when empty.
pub fn text_or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(&[
            ("TOPIC", Align::Left),
            ("PARTITION", Align::Right),
            ("HOST", Align::Left),
        ]);
        table.row([
            "orders-long-name".to_owned(),
            "0".to_owned(),
            "-".to_owned(),
        ]);
        table.row(["o".to_owned(), "12".to_owned(), "/127.0.0.1".to_owned()]);
        let mut out = Vec::new();
        table.write(&mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "TOPIC             PARTITION  HOST\n\
             orders-long-name          0  -\n\
             o                        12  /127.0.0.1\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        let table = Table::new(&[("GROUP", Align::Left), ("STATE", Align::Left)]);
        let mut out = Vec::new();
        table.write(&mut out).expect("write");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "GROUP  STATE\n");
        assert_eq!(or_dash(None::<i64>), "-");
        assert_eq!(or_dash(Some(7)), "7");
        assert_eq!(text_or_dash(""), "-");
    }
}
