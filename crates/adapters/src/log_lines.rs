//! Text logs that cannot be forged: a store string such as an app named
//! `Evil\n2026-12-01T00:00:00Z INFO ... FORGED` must not start a line of its own. Each formatted
//! event reaches the writer as one write ending in a newline (tracing-subscriber formats a whole
//! event, then writes it); every other control character in it is escaped.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Writes to stderr with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}` ...), except the
/// newline that ends each event.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapedStderr;

impl<'a> MakeWriter<'a> for EscapedStderr {
    type Writer = EscapingWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(io::stderr())
    }
}

/// Escapes control characters of each write but a final newline.
pub struct EscapingWriter<W>(pub W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `line` with every control byte escaped, but a trailing `\n`. Multi-byte UTF-8 is untouched
/// (its bytes are never ASCII control bytes).
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, ending) = match line.split_last() {
        Some((b'\n', body)) => (body, Some(b'\n')),
        _ => (line, None),
    };
    let mut out = Vec::with_capacity(line.len() + 8);
    for &byte in body {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.extend(ending);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_line_stays_inside_its_event() {
        let event = "INFO app=Evil\n2026-12-01T00:00:00Z INFO key deleted FORGED\n";
        let escaped = String::from_utf8(escape_line(event.as_bytes())).unwrap_or_default();
        assert_eq!(
            escaped,
            "INFO app=Evil\\n2026-12-01T00:00:00Z INFO key deleted FORGED\n"
        );
        assert_eq!(escaped.matches('\n').count(), 1);
    }

    #[test]
    fn terminal_escapes_and_other_controls_are_shown_not_run() {
        let escaped = escape_line("a\u{1b}[31mred\r\tb\u{7f}\u{0}é".as_bytes());
        assert_eq!(
            String::from_utf8(escaped).unwrap_or_default(),
            "a\\x1b[31mred\\r\\tb\\x7f\\x00é"
        );
    }

    #[test]
    fn the_writer_escapes_what_it_is_given() {
        let mut writer = EscapingWriter(Vec::new());
        assert!(writer.write_all(b"x\ny\n").is_ok());
        assert_eq!(writer.0, b"x\\ny\n");
    }
}
