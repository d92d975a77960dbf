//! Figures about this process and the arithmetic both statistics renderers (`INFO` and
//! `/metrics`) share.

/// Figures about this process from /proc/self.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    /// Resident set size.
    pub rss_bytes: u64,
    /// Virtual size.
    pub vsize_bytes: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
}

impl ProcessStats {
    /// Reads /proc/self/stat; `None` where /proc is not available.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
        let page = u64::try_from(page).unwrap_or(4096);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Some(ProcessStats {
            // utime = field 14, stime = 15, num_threads = 20, vsize = 23, rss = 24 (1-based,
            // counting pid and comm); here 0-based after comm: 11, 12, 17, 20, 21.
            cpu_seconds: (num(11) + num(12)) as f64 / ticks,
            threads: num(17),
            vsize_bytes: num(20),
            rss_bytes: num(21) * page,
            open_fds,
        })
    }
}

/// `n / d`, or 0 when `d` is 0 (a share or average of nothing).
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}
