//! How much memory the executor may use when the operator does not say: a share of the memory
//! this process can actually get, which in a container is the cgroup limit rather than the
//! host's RAM.

use std::fs;

use crate::{Error, Result};

/// Share of available memory the executor's pool takes by default. The rest is left for the
/// allocator's overhead, buffers outside the pool and the OS.
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.7;

/// Memory available to this process in bytes: physical RAM, capped by a cgroup limit if one is
/// set. `None` when neither can be read (not Linux, `/proc` not mounted).
pub fn available_memory_bytes() -> Option<u64> {
    let physical = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo_total(&text));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",                   // cgroup v2
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
    ]
    .iter()
    .filter_map(|path| fs::read_to_string(path).ok())
    .find_map(|text| parse_cgroup_limit(&text));
    match (physical, cgroup) {
        (Some(physical), Some(cgroup)) => Some(physical.min(cgroup)),
        (physical, cgroup) => physical.or(cgroup),
    }
}

/// The default memory pool size: [`DEFAULT_MEMORY_FRACTION`] of [`available_memory_bytes`].
pub fn default_memory_limit_bytes() -> Result<u64> {
    available_memory_bytes().map(fraction_of).ok_or_else(|| {
        Error::Config(
            "cannot determine the machine's memory from /proc/meminfo: set the memory limit \
                 explicitly (--memory-limit)"
                .to_owned(),
        )
    })
}

fn fraction_of(bytes: u64) -> u64 {
    // Exact enough: f64 holds integers up to 2^53 bytes (8 PiB) exactly.
    (bytes as f64 * DEFAULT_MEMORY_FRACTION) as u64
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    let multiplier = match fields.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(multiplier)
}

/// A cgroup memory limit in bytes; `None` for "no limit" (`max` in v2, a huge number in v1).
fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?;
    // cgroup v1 reports "unlimited" as a page-aligned i64::MAX.
    (limit < (1 << 60)).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_total() {
        let text = "MemTotal:       16318712 kB\nMemFree:         1190304 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(16_318_712 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn parses_cgroup_limits() {
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit("4294967296\n"), Some(4 << 30));
    }

    #[test]
    fn default_is_seventy_percent() {
        assert_eq!(fraction_of(10_000), 7_000);
    }

    #[test]
    fn reads_this_machine() {
        if cfg!(target_os = "linux") {
            let bytes = available_memory_bytes().expect("/proc/meminfo is readable on Linux");
            assert!(bytes > 0);
        }
    }
}
