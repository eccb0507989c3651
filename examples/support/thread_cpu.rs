//! This thread's CPU time (`/proc/thread-self/schedstat`, Linux), which other processes on a busy
//! machine do not inflate the way they inflate wall time, and the case an example was asked to run;
//! shared by the `*_cpu` examples that time the data path (`#[path = "support/thread_cpu.rs"] mod
//! thread_cpu;`).

/// CPU time this thread has run, in nanoseconds.
pub fn cpu_ns() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("this needs /proc/thread-self/schedstat (Linux): {e}"))?;
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/thread-self/schedstat: {stat:?}"))
}

/// The median over `runs` (after one warm-up) of `round`'s CPU time per message, `round` handling
/// `messages` messages.
pub fn median_per_message(
    messages: u64,
    runs: usize,
    mut round: impl FnMut(),
) -> Result<f64, String> {
    round(); // warm-up
    let mut per = Vec::with_capacity(runs);
    for _ in 0..runs {
        let before = cpu_ns()?;
        round();
        per.push((cpu_ns()? - before) as f64 / messages as f64);
    }
    per.sort_by(f64::total_cmp);
    Ok(per[runs / 2])
}

/// Whether to run the case named `case`: every case, unless the first argument names one.
pub fn chosen_case() -> impl Fn(&str) -> bool {
    let only = std::env::args().nth(1);
    move |case| only.as_deref().is_none_or(|only| only == case)
}
