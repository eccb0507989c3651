//! Errors as the user reads them: one line, `what failed: why: root cause`, each cause once.
//!
//! anyhow's `{:#}` joins an error's chain with `: `. Some errors already write their source into their
//! own message (the core's `StateError` says "cannot read the state file x: {source}" and also returns
//! that source from `source()`), and `{:#}` then prints the cause twice. [`one_line`] leaves out a cause
//! whose text the line already holds.

use std::fmt::Write as _;

/// The error and its causes on one line, outermost first, none repeated.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        let _ = write!(line, "{text}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes its source into its own message and also returns it from `source()`, as a thiserror
    /// variant with `#[error("...: {source}")]` and a `source` field does.
    #[derive(Debug)]
    struct Unreadable(std::io::Error);

    impl std::fmt::Display for Unreadable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read the state file s.json: {}", self.0)
        }
    }

    impl std::error::Error for Unreadable {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(21);
        let err = anyhow::Error::new(Unreadable(io)).context("starting the dashboard");
        let text = one_line(&err);
        assert_eq!(text.matches("Is a directory").count(), 1, "{text}");
        assert!(
            text.starts_with("starting the dashboard: cannot read the state file s.json"),
            "{text}"
        );
        assert_ne!(format!("{err:#}").matches("Is a directory").count(), 1);
    }

    #[test]
    fn distinct_causes_are_all_kept_in_order() {
        let err = anyhow::anyhow!("disk full")
            .context("writing out.json")
            .context("export failed");
        assert_eq!(one_line(&err), "export failed: writing out.json: disk full");
    }
}
