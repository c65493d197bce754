//! The display-name rule shared by teams, destinations and workflows.

/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A display name that breaks the rule; the message names what it is the name of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} name must be 1 to {MAX_NAME_CHARS} printable characters")]
pub struct InvalidName {
    pub what: &'static str,
}

/// A display name: trimmed, 1 to [`MAX_NAME_CHARS`] printable characters. `what` ("team",
/// "destination", ...) goes into the error message.
pub fn checked_name(raw: &str, what: &'static str) -> Result<String, InvalidName> {
    let name = raw.trim();
    if name.is_empty() || !is_printable(name, MAX_NAME_CHARS) {
        return Err(InvalidName { what });
    }
    Ok(name.to_owned())
}

/// At most `max_chars` characters, none of them a control character or a bidirectional
/// formatting character (which can make `abc\u{202e}gpj.exe` show as "abcexe.jpg").
pub fn is_printable(text: &str, max_chars: usize) -> bool {
    text.chars().count() <= max_chars && !text.chars().any(|c| c.is_control() || is_bidi_control(c))
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Acme  ", "team"), Ok("Acme".to_owned()));
        assert_eq!(
            checked_name(&"x".repeat(MAX_NAME_CHARS), "team").map(|n| n.len()),
            Ok(MAX_NAME_CHARS)
        );
        for bad in [
            "",
            "   ",
            "tab\there",
            &"x".repeat(MAX_NAME_CHARS + 1),
            "abc\u{202e}gpj.exe",
            "\u{2067}isolate",
            "mark\u{200f}",
        ] {
            assert_eq!(
                checked_name(bad, "workflow"),
                Err(InvalidName { what: "workflow" }),
                "{bad:?}"
            );
        }
        assert_eq!(
            InvalidName {
                what: "destination"
            }
            .to_string(),
            "destination name must be 1 to 100 printable characters"
        );
    }
}
