//! Reading a server process's memory and CPU from `/proc`, and raising
//! the open-files limit.

use anyhow::{Context, Result, bail};
use rustix::process::{Resource, Rlimit, getrlimit, prlimit, setrlimit};

/// Resident set size (`VmRSS` of `/proc/PID/status`) in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing VmRSS line {line:?}"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("no VmRSS in {path}")
}

/// User + system CPU time of the process in clock ticks (`/proc/PID/stat`
/// fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    cpu_times(pid).map(|(user, sys)| user + sys)
}

/// User and system CPU time of the process, apart, in clock ticks.
pub fn cpu_times(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may contain spaces and parentheses: the
    // numeric fields start after the last ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .with_context(|| format!("malformed {path}"))?;
    // after[0] is field 3 (state): utime is field 14, stime field 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path}: too few fields"))?
            .parse()
            .with_context(|| format!("{path}: field {} not a number", i + 3))
    };
    Ok((field(11)?, field(12)?))
}

/// CPU time of all live threads of the process in nanoseconds: the sum of
/// the first field of `/proc/PID/task/*/schedstat`. Finer than
/// [`cpu_ticks`] (10 ms ticks), but threads that exited drop out of it.
pub fn cpu_ns_threads(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total: u64 = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let Ok(entry) = entry else { continue };
        let path = entry.path().join("schedstat");
        // A thread may exit between read_dir and the read: skip it.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let ns: u64 = text
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .with_context(|| format!("parsing {}", path.display()))?;
        total += ns;
    }
    Ok(total)
}

/// Clock ticks per second for [`cpu_ticks`] (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        n => n,
    }
}

/// What [`raise_nofile`] achieved.
#[derive(Debug, Clone, Copy)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
}

fn as_u64(v: Option<u64>) -> u64 {
    v.unwrap_or(u64::MAX)
}

/// Raises this process's `RLIMIT_NOFILE` to at least `want` if it can
/// (raising the hard limit too when privileged), else as far as the hard
/// limit allows. Children spawned afterwards inherit it.
pub fn raise_nofile(want: u64) -> NofileLimit {
    let cur = getrlimit(Resource::Nofile);
    let (soft, hard) = (as_u64(cur.current), as_u64(cur.maximum));
    if soft >= want {
        return NofileLimit { soft, hard };
    }
    if hard < want {
        let both = Rlimit {
            current: Some(want),
            maximum: Some(want),
        };
        if setrlimit(Resource::Nofile, both).is_ok() {
            return NofileLimit {
                soft: want,
                hard: want,
            };
        }
    }
    let target = want.min(hard);
    let r = Rlimit {
        current: Some(target),
        maximum: cur.maximum,
    };
    match setrlimit(Resource::Nofile, r) {
        Ok(()) => NofileLimit { soft: target, hard },
        Err(_) => NofileLimit { soft, hard },
    }
}

/// The open-files limit of another process, from `/proc/PID/limits`.
pub fn nofile_of(pid: u32) -> Result<NofileLimit> {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .with_context(|| format!("no open-files line in {path}"))?;
    let nums: Vec<u64> = line["Max open files".len()..]
        .split_whitespace()
        .take(2)
        .map(|w| {
            if w == "unlimited" {
                Ok(u64::MAX)
            } else {
                w.parse()
            }
        })
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {line:?}"))?;
    match nums[..] {
        [soft, hard] => Ok(NofileLimit { soft, hard }),
        _ => bail!("parsing {line:?}"),
    }
}

/// Raises another process's `RLIMIT_NOFILE` to at least `want` (hard
/// limit too when privileged); returns the limit it has afterwards.
pub fn raise_nofile_of(pid: u32, want: u64) -> Result<NofileLimit> {
    let old = nofile_of(pid)?;
    if old.soft >= want {
        return Ok(old);
    }
    let rpid = rustix::process::Pid::from_raw(i32::try_from(pid).context("pid out of range")?)
        .context("pid 0")?;
    let both = Rlimit {
        current: Some(want),
        maximum: Some(old.hard.max(want)),
    };
    if prlimit(Some(rpid), Resource::Nofile, both).is_err() {
        let soft_only = Rlimit {
            current: Some(old.hard.min(want)),
            maximum: Some(old.hard),
        };
        prlimit(Some(rpid), Resource::Nofile, soft_only).context("prlimit")?;
    }
    nofile_of(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() -> Result<()> {
        let pid = std::process::id();
        assert!(rss_bytes(pid)? > 0);
        cpu_ticks(pid)?;
        // schedstat may be missing on kernels without CONFIG_SCHEDSTATS.
        let _ = cpu_ns_threads(pid);
        assert!(nofile_of(pid)?.soft > 0);
        assert!(clock_ticks_per_second() > 0);
        Ok(())
    }
}
