//! The container's memory limit, read from the cgroup file tree.
//!
//! Redis leaves `maxmemory` unlimited by default, which in a container means the kernel's OOM
//! killer ends the process once the data outgrows the limit. shardcache instead defaults
//! `maxmemory` to a share ([`DEFAULT_SHARE_PERCENT`]) of the cgroup limit when there is one.
//!
//! Both cgroup versions are understood, v2 first:
//! * v2: `<root>/memory.max`, a byte count or `max` (no limit);
//! * v1: `<root>/memory/memory.limit_in_bytes`, a byte count where "no limit" is a huge value
//!   (`PAGE_COUNTER_MAX`, about 2^63 rounded to a page).
//!
//! The root is a parameter (`--cgroup-root`) so tests pass a fake tree.

use std::path::Path;

/// Share of the cgroup memory limit that becomes the default `maxmemory`, in percent.
///
/// `maxmemory` bounds what the store *accounts* for keys and values; the process also needs
/// room for the allocator's fragmentation, the hash tables' empty slots, connection buffers
/// (up to 64 KiB of output per client between flushes, plus requests being read) and the
/// runtime. 25% of headroom covers those on the workloads we measured (see the README's
/// memory section) while leaving most of the container to the cache.
pub const DEFAULT_SHARE_PERCENT: u64 = 75;

/// Limits at or above this are "unlimited" (cgroup v1 writes `PAGE_COUNTER_MAX` pages,
/// 0x7FFFFFFFFFFFF000 on 4 KiB pages, when no limit is set; no machine has 2^60 bytes).
const UNLIMITED_THRESHOLD: u64 = 1 << 60;

/// Where a limit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The unified hierarchy (`memory.max`).
    V2,
    /// The legacy memory controller (`memory/memory.limit_in_bytes`).
    V1,
}

/// The memory limit of the cgroup rooted at `root`, in bytes, or `None` when there is no
/// cgroup there or it sets no limit.
pub fn memory_limit(root: &Path) -> Option<(u64, CgroupVersion)> {
    if let Ok(s) = std::fs::read_to_string(root.join("memory.max")) {
        return parse_limit(&s).map(|n| (n, CgroupVersion::V2));
    }
    if let Ok(s) = std::fs::read_to_string(root.join("memory").join("memory.limit_in_bytes")) {
        return parse_limit(&s).map(|n| (n, CgroupVersion::V1));
    }
    None
}

/// Parses a limit file's content: a byte count, `max` or a huge value (no limit), anything
/// else (unreadable) as no limit.
fn parse_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|&n| n > 0 && n < UNLIMITED_THRESHOLD)
}

/// The default `maxmemory` for a cgroup limit: [`DEFAULT_SHARE_PERCENT`] of it.
pub fn default_maxmemory(limit: u64) -> u64 {
    (u128::from(limit) * u128::from(DEFAULT_SHARE_PERCENT) / 100) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shardcache-cgroup-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, content) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn v2_limit() {
        let d = tree(&[("memory.max", "536870912\n")]);
        assert_eq!(memory_limit(&d), Some((536_870_912, CgroupVersion::V2)));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn v2_unlimited() {
        let d = tree(&[("memory.max", "max\n")]);
        assert_eq!(memory_limit(&d), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn v1_limit_and_unlimited() {
        let d = tree(&[("memory/memory.limit_in_bytes", "1073741824\n")]);
        assert_eq!(memory_limit(&d), Some((1 << 30, CgroupVersion::V1)));
        let _ = std::fs::remove_dir_all(d);
        let d = tree(&[("memory/memory.limit_in_bytes", "9223372036854771712\n")]);
        assert_eq!(memory_limit(&d), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn v2_wins_over_v1_and_garbage_is_no_limit() {
        let d = tree(&[
            ("memory.max", "1000\n"),
            ("memory/memory.limit_in_bytes", "2000\n"),
        ]);
        assert_eq!(memory_limit(&d), Some((1000, CgroupVersion::V2)));
        let _ = std::fs::remove_dir_all(d);
        let d = tree(&[("memory.max", "lots\n")]);
        assert_eq!(memory_limit(&d), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn no_cgroup() {
        let d = tree(&[]);
        assert_eq!(memory_limit(&d), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn share() {
        assert_eq!(default_maxmemory(1 << 30), 805_306_368);
        assert_eq!(default_maxmemory(0), 0);
    }
}
