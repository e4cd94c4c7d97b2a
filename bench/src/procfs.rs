//! What `/proc` says about a process and its descendants: CPU time and peak memory. The parsers
//! are pure (they take the file's text) so they are tested on fixed samples; the readers around
//! them tolerate a process that exits between listing and reading.

use std::collections::HashMap;
use std::fs;

/// The fields of `/proc/PID/stat` a benchmark needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    /// utime + stime, clock ticks: the process's own threads, the exited ones included.
    pub ticks: u64,
    /// cutime + cstime: its children that have exited and been waited for.
    pub child_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    // `rest` starts with field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)?,
        child_ticks: field(16)? + field(17)?,
    })
}

/// The command name in a `/proc/.../stat` text (field 2, without its parentheses): a thread's
/// own name in `/proc/PID/task/TID/stat`.
pub fn stat_name(text: &str) -> Option<&str> {
    let (head, _) = text.rsplit_once(')')?;
    Some(head.split_once(" (")?.1)
}

/// A number of `/proc/PID/status`: `VmHWM`, `VmRSS` (in kB), `Threads` ...
pub fn status_value(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `root` and its live descendants, from all processes' stats.
pub fn tree(root: u32, all: &[Stat]) -> Vec<Stat> {
    let mut children: HashMap<u32, Vec<&Stat>> = HashMap::new();
    for s in all {
        children.entry(s.ppid).or_default().push(s);
    }
    let mut out: Vec<Stat> = all.iter().filter(|s| s.pid == root).copied().collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i].pid) {
            out.extend(kids.iter().map(|s| **s));
        }
        i += 1;
    }
    out
}

/// One look at a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeSample {
    /// CPU ticks of the tree: every live member's own, and what its exited children used.
    pub ticks: u64,
    /// The sum of the live members' VmHWM (each one's own peak).
    pub hwm_kib: u64,
    /// How many processes the tree has now.
    pub processes: usize,
}

/// CPU and memory of `root` and its live descendants now; `None` once `root` is gone.
pub fn sample_tree(root: u32) -> Option<TreeSample> {
    let all = all_stats();
    let members = tree(root, &all);
    if members.is_empty() {
        return None;
    }
    let mut sample = TreeSample { processes: members.len(), ..TreeSample::default() };
    for s in &members {
        sample.ticks += s.ticks + s.child_ticks;
        if let Ok(status) = fs::read_to_string(format!("/proc/{}/status", s.pid)) {
            sample.hwm_kib += status_value(&status, "VmHWM").unwrap_or(0);
        }
    }
    Some(sample)
}

/// CPU ticks of the live threads named `name` in `root`'s tree: what one part of a program
/// costs, apart from the noise of the others.
pub fn thread_ticks(root: u32, name: &str) -> u64 {
    tree(root, &all_stats())
        .iter()
        .filter_map(|s| fs::read_dir(format!("/proc/{}/task", s.pid)).ok())
        .flatten()
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("stat")).ok())
        .filter(|text| stat_name(text) == Some(name))
        .filter_map(|text| parse_stat(&text))
        .map(|s| s.ticks)
        .sum()
}

/// CPU ticks of one process (its own and its waited-for children's).
pub fn ticks(pid: u32) -> Option<u64> {
    let s = parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(s.ticks + s.child_ticks)
}

fn all_stats() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|t| parse_stat(&t))
        .collect()
}

/// `getconf CLK_TCK` (the unit of the ticks); 100, Linux's USER_HZ, if it cannot tell.
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line (rsyslogd), with a command name holding a space and a parenthesis.
    const STAT: &str = "4242 (rs:main Q:Reg) S 4200 4242 4200 0 -1 4194624 1303 0 0 0 731 95 12 3 20 0 4 0 123456 \
                        236027904 1024 18446744073709551615 1 1 0 0 0 0 0 4096 16902 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        assert_eq!(parse_stat(STAT), Some(Stat { pid: 4242, ppid: 4200, ticks: 826, child_ticks: 15 }));
        let odd = STAT.replace("(rs:main Q:Reg)", "(a) b (c))");
        assert_eq!(parse_stat(&odd).map(|s| s.ticks), Some(826));
        assert_eq!(stat_name(STAT), Some("rs:main Q:Reg"));
        assert_eq!(stat_name(&odd), Some("a) b (c)"));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_values_in_kib() {
        let status = "Name:\tsyslog-ng\nVmPeak:\t  300000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(status_value(status, "VmHWM"), Some(9876));
        assert_eq!(status_value(status, "VmRSS"), Some(9000));
        assert_eq!(status_value(status, "VmSwap"), None);
    }

    #[test]
    fn tree_takes_descendants_only() {
        let s = |pid, ppid| Stat { pid, ppid, ticks: 0, child_ticks: 0 };
        let all = [s(1, 0), s(10, 1), s(11, 10), s(12, 11), s(20, 1), s(13, 10)];
        let mut pids: Vec<u32> = tree(10, &all).iter().map(|s| s.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(tree(99, &all).is_empty());
    }

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let sample = sample_tree(me).unwrap();
        assert!(sample.processes >= 1 && sample.hwm_kib > 0);
        assert!(ticks(me).is_some());
    }

    #[test]
    fn counts_the_threads_of_one_name() {
        let busy = std::thread::Builder::new()
            .name("bench-busy".into())
            .spawn(|| {
                // Some CPU of its own, until a tick is seen.
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while thread_ticks(std::process::id(), "bench-busy") == 0 {
                    x = x.wrapping_add(std::hint::black_box(1));
                    assert!(start.elapsed() < std::time::Duration::from_secs(60), "no tick seen");
                }
                x
            })
            .unwrap();
        busy.join().unwrap();
        assert_eq!(thread_ticks(std::process::id(), "no-such-thread"), 0);
    }
}
