//! Clean text (protocol section 2): what a text field a participant sends (names, notes,
//! origins, photo URLs) may hold. Other people's screens show these strings, so control
//! characters (which can hide or fake content in logs and terminals) and bidirectional
//! overrides (which reorder what is shown, e.g. make `gpj.exe` read as `exe.jpg`) are refused.
//! The gateway refuses them at parsing; the core checks again because it trusts no input.

use crate::reject::Reject;

/// Whether `c` may not appear in a text field: C0 and C1 controls (NUL, newline, DEL…) and the
/// bidirectional formatting characters (embeddings, overrides, isolates, marks).
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Refuses `text` if it holds a forbidden character, naming `field` and where.
pub fn check_clean(field: &str, text: &str) -> Result<(), Reject> {
    match text.chars().enumerate().find(|(_, c)| is_forbidden_char(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(Reject::bad_request(format!(
            "field `{field}` must not contain control or bidirectional characters (U+{:04X} at character {at})",
            c as u32
        ))),
    }
}

/// The longest display name (participant, product), in bytes.
pub const NAME_BYTES_MAX: usize = 128;

/// A name: clean, not empty (nor only spaces), at most `NAME_BYTES_MAX` bytes.
pub fn check_name(field: &str, text: &str) -> Result<(), Reject> {
    if text.trim().is_empty() {
        return Err(Reject::bad_request(format!("field `{field}` must not be empty")));
    }
    if text.len() > NAME_BYTES_MAX {
        return Err(Reject::bad_request(format!("field `{field}` must be at most {NAME_BYTES_MAX} bytes")));
    }
    check_clean(field, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_refused_naming_the_field() {
        for bad in
            ["a\0b", "line\nbreak", "tab\t", "del\u{7f}", "c1\u{85}", "\u{202E}gpj.exe", "iso\u{2066}x", "\u{200F}"]
        {
            let e = check_clean("note", bad).unwrap_err();
            assert!(e.message.contains("`note`"), "{bad:?}: {}", e.message);
        }
        for good in ["", "Yunnan 云南", "Dounan Rose Co-op", "http://x/p.jpg?a=1&b=2", "emoji 🌹", "עברית"] {
            check_clean("note", good).unwrap();
        }
    }

    #[test]
    fn names_are_not_empty() {
        assert!(check_name("name", "").unwrap_err().message.contains("must not be empty"));
        assert!(check_name("name", "   ").is_err());
        assert!(check_name("name", &"x".repeat(NAME_BYTES_MAX + 1)).unwrap_err().message.contains("at most"));
        check_name("name", "Rose").unwrap();
    }
}
