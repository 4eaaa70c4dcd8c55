//! Memory checked before it is taken: estimates of what a configuration needs, and what this
//! machine can give, so a configuration too large for the machine is one clear error instead of
//! an allocation failure with a backtrace.

use crate::error::{Error, Result};

/// Bytes this process may still allocate: `MemAvailable` from `/proc/meminfo`, lowered to what
/// the control group's `memory.max` leaves where there is a limit. `None` where neither can be
/// read (not Linux): then nothing is checked.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo.as_deref().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    let read = |name: &str| -> Option<u64> {
        let text = std::fs::read_to_string(format!("/sys/fs/cgroup/{name}")).ok()?;
        text.trim().parse().ok() // "max" (no limit) does not parse
    };
    let cgroup =
        read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    match (available, cgroup) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// `Err(Error::InsufficientMemory)` when `needed` bytes for `what` exceed what
/// [`available_bytes`] reports.
///
/// # Errors
/// [`Error::InsufficientMemory`], naming the estimate and the limit.
pub fn check(what: &str, needed: u64) -> Result<()> {
    match available_bytes() {
        Some(available) if needed > available => Err(Error::InsufficientMemory {
            what: what.to_owned(),
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

/// `Σ count·bytes` in `f64` (no overflow for absurd sizes), saturated to `u64`.
pub(crate) fn bytes(terms: &[(f64, f64)]) -> u64 {
    let total: f64 = terms.iter().map(|(count, size)| count * size).sum();
    if total >= u64::MAX as f64 {
        u64::MAX
    } else {
        total as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_saturate_instead_of_overflowing() {
        assert_eq!(bytes(&[(1e30, 4.0)]), u64::MAX);
        assert_eq!(bytes(&[(3.0, 4.0), (2.0, 8.0)]), 28);
    }

    #[test]
    fn a_need_beyond_the_machine_is_one_error_line() {
        if available_bytes().is_none() {
            return; // not Linux: nothing to check against
        }
        let err = check("this test", u64::MAX).unwrap_err();
        let line = err.to_string();
        assert!(line.starts_with("this test needs about "), "{line}");
        assert!(!line.contains('\n'));
        assert!(check("this test", 1).is_ok());
    }
}
