//! Text from outside (client ids, user names, topics, headers, payloads) as it may go into a
//! log line: cut short and with control characters escaped, so nobody sizes our logs or
//! writes lines of their own into them.

use std::fmt;

/// Characters of outside text a log line shows; the rest is summarised by its length.
pub const LOG_CHARS: usize = 80;

/// Outside text, for a log line: at most [`LOG_CHARS`] characters, control characters, quotes
/// and backslashes escaped, and "…(N bytes)" when it was longer.
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(&'a [u8]);

/// `s`, made safe to log.
pub fn untrusted(s: &str) -> Untrusted<'_> {
    Untrusted(s.as_bytes())
}

/// Bytes that should be text (a payload, a header), made safe to log.
pub fn untrusted_bytes(b: &[u8]) -> Untrusted<'_> {
    Untrusted(b)
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Four bytes are the most one character takes: nothing past this is ever shown.
        let head = &self.0[..self.0.len().min(LOG_CHARS * 4)];
        let mut shown = 0;
        for chunk in head.utf8_chunks() {
            for c in chunk.valid().chars() {
                if shown == LOG_CHARS {
                    return write!(f, "…({} bytes)", self.0.len());
                }
                shown += 1;
                match c {
                    '"' | '\\' => write!(f, "\\{c}")?,
                    c if c.is_control() => write!(f, "{}", c.escape_default())?,
                    c => f.write_fmt(format_args!("{c}"))?,
                }
            }
            if !chunk.invalid().is_empty() {
                if shown == LOG_CHARS {
                    return write!(f, "…({} bytes)", self.0.len());
                }
                shown += 1;
                f.write_str("\u{fffd}")?;
            }
        }
        if head.len() < self.0.len() {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_passes_with_controls_escaped() {
        assert_eq!(untrusted("kitchen-1").to_string(), "kitchen-1");
        assert_eq!(untrusted("a\nINFO forged line").to_string(), "a\\nINFO forged line");
        assert_eq!(untrusted("q\"\\\u{1b}[31m").to_string(), "q\\\"\\\\\\u{1b}[31m");
        assert_eq!(untrusted_bytes(b"ok\xff").to_string(), "ok\u{fffd}");
        assert_eq!(format!("{:?}", untrusted("x")), "\"x\"");
    }

    #[test]
    fn long_text_is_cut_with_its_size() {
        let long = "é".repeat(1_000_000);
        let shown = untrusted(&long).to_string();
        assert_eq!(shown, format!("{}…(2000000 bytes)", "é".repeat(LOG_CHARS)));
        let exact = "x".repeat(LOG_CHARS);
        assert_eq!(untrusted(&exact).to_string(), exact);
        let junk = vec![0xffu8; 10_000];
        assert!(untrusted_bytes(&junk).to_string().ends_with("…(10000 bytes)"));
    }
}
