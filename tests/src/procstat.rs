//! What a running process costs, read from `/proc`: resident memory and
//! context switches of all its threads (for the benchmarks), and its
//! children.

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Voluntary context switches of all threads: each is the thread going
    /// to sleep (a timer, a read), so one wake-up later.
    pub voluntary: u64,
    /// Involuntary ones (preemption: says more about the machine's load).
    pub involuntary: u64,
}

impl Sample {
    /// The sum of two readings (of two processes).
    #[must_use]
    pub fn plus(self, o: Sample) -> Sample {
        Sample {
            rss_kib: self.rss_kib + o.rss_kib,
            voluntary: self.voluntary + o.voluntary,
            involuntary: self.involuntary + o.involuntary,
        }
    }
}

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Read process `pid`; only the threads whose name starts with `threads`
/// count for the switches when given (`None`: all). A process gone reads
/// as zeros.
#[must_use]
pub fn sample(pid: u32, threads: Option<&str>) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut s = Sample {
        rss_kib: field(&status, "VmRSS:"),
        ..Sample::default()
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return s;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if threads.is_some_and(|t| !comm.starts_with(t)) {
            continue;
        }
        let Ok(st) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        s.voluntary += field(&st, "voluntary_ctxt_switches:");
        s.involuntary += field(&st, "nonvoluntary_ctxt_switches:");
    }
    s
}

/// The processes whose parent is `pid`.
#[must_use]
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = &s[s.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// [`sample`] of every child of `pid`, summed, and how many there are.
#[must_use]
pub fn children_sample(pid: u32) -> (usize, Sample) {
    let kids = children(pid);
    let total = kids
        .iter()
        .fold(Sample::default(), |acc, k| acc.plus(sample(*k, None)));
    (kids.len(), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_a_child_of_it() {
        let me = std::process::id();
        let s = sample(me, None);
        assert!(s.rss_kib > 0 && s.voluntary + s.involuntary > 0, "{s:?}");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(children(me).contains(&child.id()));
        let (n, c) = children_sample(me);
        assert!(n >= 1 && c.rss_kib > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(sample(child.id(), None), Sample::default(), "gone: zeros");
    }
}
