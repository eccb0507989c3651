//! This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, Linux), which other processes on a busy
//! machine do not inflate the way they inflate wall time, the median of a set of figures, and the
//! case an example was asked to run; shared by the `*_cpu` examples that time the data path
//! (`#[path = "support/thread_cpu.rs"] mod thread_cpu;`).

/// CPU time this thread has run, in nanoseconds. The clock, not `/proc/thread-self/schedstat`: that
/// moves only at scheduler ticks, too coarse for a round of a few thousand messages.
#[cfg(target_os = "linux")]
pub fn cpu_ns() -> Result<u64, String> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Ok(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
}

/// CPU time this thread has run: only measured on Linux.
#[cfg(not(target_os = "linux"))]
pub fn cpu_ns() -> Result<u64, String> {
    Err("this example reads the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID) on Linux only".into())
}

/// The median of `figures` (the upper one of an even count).
pub fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
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
    Ok(median(per))
}

/// Whether to run the case named `case`: every case, unless the first argument names one.
pub fn chosen_case() -> impl Fn(&str) -> bool {
    let only = std::env::args().nth(1);
    move |case| only.as_deref().is_none_or(|only| only == case)
}
