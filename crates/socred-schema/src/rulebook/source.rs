//! Turns byte offsets into the `file:line:column` of a problem, and gathers
//! the problems of one rulebook.
//!
//! Lines and columns are 1-based; a column counts characters, not bytes, so
//! that it matches what an editor shows for text with Chinese titles.

use std::ops::Range;

use super::Problem;

/// The problems found so far in one rulebook text.
pub(crate) struct Diagnostics<'t> {
    file: &'t str,
    text: &'t str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
    /// Byte offset of each problem, in the order recorded.
    offsets: Vec<usize>,
}

impl<'t> Diagnostics<'t> {
    pub(crate) fn new(file: &'t str, text: &'t str) -> Diagnostics<'t> {
        let mut line_starts = vec![0];
        for (offset, byte) in text.bytes().enumerate() {
            if byte == b'\n' {
                line_starts.push(offset + 1);
            }
        }
        Diagnostics {
            file,
            text,
            line_starts,
            problems: Vec::new(),
            offsets: Vec::new(),
        }
    }

    pub(crate) fn text(&self) -> &'t str {
        self.text
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.error_at(span.start, message);
    }

    /// Whether a problem was recorded inside `span` already: a value the
    /// shape check refused and left out is not reported again as missing.
    pub(crate) fn reported_within(&self, span: &Range<usize>) -> bool {
        self.offsets.iter().any(|offset| span.contains(offset))
    }

    /// Records a problem at byte `offset` of the text.
    pub(crate) fn error_at(&mut self, offset: usize, message: impl Into<String>) {
        self.offsets.push(offset);
        let (line, column) = self.line_column(offset);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The problems, sorted by position (then message, for a stable report).
    pub(crate) fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        self.problems.dedup();
        self.problems
    }

    /// The 1-based line of byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0);
        // Offsets from the TOML parser fall on character boundaries; should
        // one not, count the characters of the longest valid prefix.
        let before = self.text.get(line_start..offset).unwrap_or_else(|| {
            let mut end = offset;
            while end > line_start && !self.text.is_char_boundary(end) {
                end -= 1;
            }
            self.text.get(line_start..end).unwrap_or("")
        });
        (line_index + 1, before.chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_and_lines_start_at_one() {
        let text = "a = 1\ntitle = \"信用\" x\n";
        let mut diag = Diagnostics::new("f.toml", text);
        diag.error_at(0, "first");
        let x = text.find(" x").map(|i| i + 1).unwrap_or_default();
        diag.error_at(x, "after chinese");
        diag.error_at(text.len(), "end");
        let lines: Vec<String> = diag.into_problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            lines,
            [
                "f.toml:1:1: first",
                "f.toml:2:14: after chinese",
                "f.toml:3:1: end"
            ]
        );
    }
}
