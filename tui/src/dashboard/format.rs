//! Number and time formatting shared by the panels, so a figure reads the same everywhere.

pub use crate::numbers::count;

/// A count in at most five characters: `999`, `12.3k`, `1.2M`, `4.0G`.
pub fn compact(n: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    if n < 10_000 {
        return n.to_string();
    }
    let x = n as f64;
    for (scale, unit) in UNITS {
        if x >= scale {
            let v = x / scale;
            return if v >= 100.0 {
                format!("{v:.0}{unit}")
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    n.to_string()
}

/// A rate per second, rounded to a whole number below 10k and compacted above.
pub fn rate(per_s: f64) -> String {
    let r = if per_s.is_finite() {
        per_s.max(0.0).round()
    } else {
        0.0
    };
    compact(r as u64)
}

/// Seconds as `h:mm:ss` (or `m:ss` under an hour).
pub fn uptime(secs: f64) -> String {
    let s = if secs.is_finite() {
        secs.max(0.0) as u64
    } else {
        0
    };
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `text` with its control characters escaped (names, filters, client ids and topics come from
/// outside: ratatui drops C0 and C1 controls but passes bidirectional overrides to the terminal), cut
/// to `width` characters, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    let text = crate::terminal_text::escape_controls(text);
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// `text` broken into lines of at most `width` characters, at spaces where possible.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        // A word longer than a line is split where it must be.
        while word.len() > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            lines.push(word.drain(..width).collect());
        }
        let need = if len == 0 {
            word.len()
        } else {
            len + 1 + word.len()
        };
        if need > width && len > 0 {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        line.extend(word.iter());
        len += word.len();
    }
    if len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// A bar of `width` cells filled in proportion to `value / max`.
pub fn bar(value: u64, max: u64, width: usize) -> String {
    let filled = if max == 0 {
        0
    } else {
        ((value.min(max) as f64 / max as f64) * width as f64).ceil() as usize
    };
    let filled = filled.min(width);
    let mut s = "█".repeat(filled);
    s.push_str(&"░".repeat(width - filled));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands_and_compact_stays_short() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(compact(9999), "9999");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(123_456_789), "123M");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(uptime(3725.0), "1:02:05");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(bar(8, 16, 4), "██░░");
        assert_eq!(bar(1, 16, 4), "█░░░");
        assert_eq!(
            wrap("export failed: cannot write", 12),
            ["export", "failed:", "cannot write"]
        );
        assert_eq!(wrap("abcdefghij xy", 4), ["abcd", "efgh", "ij", "xy"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
