//! Peak resident memory and CPU time of this process, from `/proc/self` (Linux).

use crate::BenchError;

/// `VmHWM`: the most resident memory this process has had, in bytes.
pub fn peak_rss_bytes() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(BenchError::io("reading /proc/self/status"))?;
    parse_status_kib(&status, "VmHWM")
        .map(|kib| kib * 1024)
        .ok_or_else(|| BenchError::Setup("/proc/self/status has no VmHWM line".into()))
}

/// Starts a new peak: writing `5` to `clear_refs` resets `VmHWM` to the current RSS (Linux >= 4.0),
/// so a phase's peak is not the peak of the set-up before it.
pub fn reset_peak_rss() -> Result<(), BenchError> {
    std::fs::write("/proc/self/clear_refs", "5").map_err(BenchError::io("resetting VmHWM"))
}

/// User + system CPU time this process has used, in seconds (`/proc/self/stat` counts in
/// `USER_HZ` ticks, which Linux fixes at 100 per second for every architecture it exports).
pub fn cpu_seconds() -> Result<f64, BenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(BenchError::io("reading /proc/self/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / 100.0)
        .ok_or_else(|| BenchError::Setup("/proc/self/stat has no utime/stime".into()))
}

/// `utime + stime` (fields 14 and 15; the command name in field 2 may contain spaces, so fields are
/// counted from its closing parenthesis).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The value in kB of a `Name:   123 kB` line.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_lines() {
        let status = "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(1536));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "1234 (a) b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_peak_is_readable() {
        let peak = peak_rss_bytes().unwrap();
        assert!(peak > 0);
    }
}
