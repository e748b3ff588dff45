//! What the harness reads from `/proc`: the CPU time and resident memory of a process
//! (a service, or the harness itself for the in-process baselines), and a description of
//! the machine for the report. Linux only, like the services' deployment target.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// CPU time (user + system) a process has used so far, in seconds, read from
/// `/proc/PID/stat`: every thread of the process, including ones that have exited.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("Failed to read /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces; the fields
    // after the last ')' start at field 3 (state). utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("Unexpected /proc/PID/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .context("Short /proc/PID/stat")?
            .parse::<u64>()
            .context("Unexpected /proc/PID/stat field")
    };
    // Field 14 is index 11 after the state (field 3 is index 0).
    let total = ticks(11)? + ticks(12)?;
    Ok(total as f64 / clock_ticks_per_second())
}

/// CPU time the whole machine has spent busy so far (every core, every process, plus
/// time the hypervisor gave to others: `steal`), in seconds, from `/proc/stat`.
pub fn machine_busy_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("Failed to read /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("No cpu line in /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum();
    Ok(busy as f64 / clock_ticks_per_second())
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` (the crate forbids `unsafe`, so no libc);
/// 100 on every Linux we know of.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Resident memory of a process in MiB: now (`VmRSS`) and its peak so far (`VmHWM`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("Failed to read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("No {name} in /proc/{pid}/status"))?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("Unexpected {name} line"))?;
        Ok(kib / 1024.0)
    };
    Ok(Memory {
        rss_mib: field("VmRSS:")?,
        peak_mib: field("VmHWM:")?,
    })
}

/// The cores this process may run on (what tokio sizes its worker pool by).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// CPU model, core count, memory and kernel, for the report.
#[derive(Clone, Debug)]
pub struct Description {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

pub fn describe() -> Description {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    Description {
        cpu,
        cores: cores(),
        memory_gib,
        kernel,
    }
}

/// `true` when `/proc` is there to read (Linux).
pub fn check_supported() -> anyhow::Result<()> {
    if !Path::new("/proc/self/stat").exists() {
        bail!("the harness reads /proc and runs on Linux only");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_process_figures_are_readable_and_plausible() {
        let pid = std::process::id();
        let cpu = cpu_seconds(pid).unwrap();
        assert!(cpu >= 0.0);
        let mem = memory(pid).unwrap();
        assert!(mem.rss_mib > 0.5 && mem.peak_mib >= mem.rss_mib);
        assert!(describe().cores >= 1);
    }
}
