//! How the load generator writes numbers (counts, rates, byte sizes), shared by the progress line, the
//! summary and the scenario table.

pub use crate::numbers::count;

/// `1.23M`, `456.7k`, `89`.
pub fn rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// `12.3 MiB`, or `n/a`.
pub fn bytes(b: Option<u64>) -> String {
    match b {
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        None => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_scale_to_k_and_m() {
        assert_eq!(rate(12.0), "12");
        assert_eq!(rate(12_345.0), "12.3k");
        assert_eq!(rate(1_234_567.0), "1.23M");
    }
}
