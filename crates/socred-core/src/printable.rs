//! Text from outside (a record's key, an identifier typed on the command
//! line, a rulebook id) made safe to print in a message: a control
//! character or a bidirectional override inside it would otherwise end the
//! message's line, colour the terminal, or reorder what is shown, so that
//! one rejection could pass for another line of the report.

use std::borrow::Cow;

/// `text` with each control character (C0, DEL, C1) and each
/// bidirectional control escaped as Rust writes it (`\n`, `\u{1b}`,
/// `\u{202e}`); the text itself when it has none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn controls_and_overrides_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("fields.amount_yuan"), "fields.amount_yuan");
        assert_eq!(printable("金额 ａ"), "金额 ａ");
        assert_eq!(
            printable("\u{1b}[31mevil\n line 99: fake"),
            "\\u{1b}[31mevil\\n line 99: fake"
        );
        assert_eq!(printable("a\u{202e}b\tc\u{85}"), "a\\u{202e}b\\tc\\u{85}");
    }
}
