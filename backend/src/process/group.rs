//! An execution's process group: signalling it, recognising it again after a
//! crash, and waiting until it is gone.
//!
//! Every workflow program calls `setsid()` before it runs, so it leads a
//! session and a process group whose id is its pid; whatever it starts stays
//! in that group unless it leaves on purpose.

use std::fs;
use std::io;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How often [`wait_group_gone`] looks again.
const GONE_POLL: Duration = Duration::from_millis(20);

/// What identifies a running execution's processes across a manager crash:
/// the group id alone could be reused by an unrelated program after a pid
/// wrap-around, the group leader's start time could not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The process group (and session) id: the program's pid.
    pub pgid: i32,
    /// The program's start time, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

/// Why a process group could not be examined or signalled.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// `/proc` could not be read.
    #[error("cannot read {path}: {source}")]
    Proc {
        /// The file or directory.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// `/proc/<pid>/stat` did not have the expected fields.
    #[error("cannot parse /proc/{pid}/stat")]
    BadStat {
        /// The process.
        pid: i32,
    },
    /// A signal could not be sent (other than to a group that is already gone).
    #[error("cannot signal process group {pgid}: {source}")]
    Signal {
        /// The group.
        pgid: i32,
        /// What the system said.
        source: io::Error,
    },
}

impl ProcessIdentity {
    /// The identity of the group led by process `pid`, read while the process
    /// exists (a zombie that is not yet reaped still has its `/proc` entry).
    pub fn of_leader(pid: i32) -> Result<Self, GroupError> {
        match read_stat(pid)? {
            Some(stat) => Ok(Self { pgid: stat.pgrp, start_time: stat.start_time }),
            None => Err(GroupError::Proc {
                path: format!("/proc/{pid}/stat"),
                source: io::Error::from(io::ErrorKind::NotFound),
            }),
        }
    }
}

/// Kills (SIGKILL) the group of `identity` if it is still the same one, and
/// says whether it did; for start-up after a crash, where the recorded groups
/// may be long gone and their ids reused.
///
/// The same group means: the leader `pgid` is alive with the recorded start
/// time; or the leader is gone (its parent-death signal killed it with the
/// manager) but processes of its group and session remain. The second case is
/// safe because a pid stays allocated while any process still uses it as its
/// group or session id, so nothing new can have taken the number meanwhile.
pub fn kill_group_if_same(identity: ProcessIdentity) -> Result<bool, GroupError> {
    let pgid = identity.pgid;
    // 0, 1 and negative numbers would signal our own group, init or everyone.
    if pgid <= 1 {
        return Ok(false);
    }
    let same = match read_stat(pgid)? {
        Some(leader) => leader.start_time == identity.start_time && leader.pgrp == pgid && leader.session == pgid,
        None => members(pgid)?
            .iter()
            .any(|member| member.session == pgid && member.start_time >= identity.start_time && !member.is_dead()),
    };
    if same {
        signal_group(pgid, Signal::KILL)?;
    }
    Ok(same)
}

/// Waits until no live process of group `pgid` remains, at most `within`;
/// true if the group is gone. Zombies count as gone: they run nothing and
/// only wait for their new parent to reap them, which can take a while when
/// the system's init is lazy about it.
pub async fn wait_group_gone(pgid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if group_gone(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(GONE_POLL).await;
    }
}

/// True if no live process is in group `pgid` (zombies count as gone). The
/// signal-0 probe answers the common case without reading `/proc`.
pub fn group_gone(pgid: i32) -> bool {
    let Some(group) = group_pid(pgid) else { return true };
    match test_kill_process_group(group) {
        Err(Errno::SRCH) => true,
        // Alive or not ours to probe (EPERM): look at the members themselves.
        _ => match members(pgid) {
            Ok(found) => found.iter().all(Stat::is_dead),
            Err(error) => {
                tracing::warn!(pgid, %error, "cannot list the processes of a group");
                false
            }
        },
    }
}

/// Sends `signal` to every process of group `pgid`; a group that is already
/// gone is not an error (it ended on its own, which is what we wanted).
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> Result<(), GroupError> {
    let Some(group) = group_pid(pgid) else {
        return Err(GroupError::Signal { pgid, source: io::Error::from(io::ErrorKind::InvalidInput) });
    };
    match kill_process_group(group, signal) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(errno) => Err(GroupError::Signal { pgid, source: errno.into() }),
    }
}

/// `pgid` as a group to signal; `None` for 0, 1 and negative numbers, which
/// would mean our own group, init's, or (as `kill(-pgid)`) a single process.
fn group_pid(pgid: i32) -> Option<Pid> {
    if pgid > 1 {
        Pid::from_raw(pgid)
    } else {
        None
    }
}

/// The name of signal number `raw` (`SIGKILL`), if it is a standard one. From
/// rustix's constants, so the numbering is the platform's.
pub(crate) fn signal_name(raw: i32) -> Option<&'static str> {
    const NAMES: &[(Signal, &str)] = &[
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::CHILD, "SIGCHLD"),
        (Signal::CONT, "SIGCONT"),
        (Signal::STOP, "SIGSTOP"),
        (Signal::TSTP, "SIGTSTP"),
        (Signal::TTIN, "SIGTTIN"),
        (Signal::TTOU, "SIGTTOU"),
        (Signal::URG, "SIGURG"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::VTALARM, "SIGVTALRM"),
        (Signal::PROF, "SIGPROF"),
        (Signal::WINCH, "SIGWINCH"),
        (Signal::IO, "SIGIO"),
        (Signal::SYS, "SIGSYS"),
    ];
    NAMES.iter().find(|(signal, _)| signal.as_raw() == raw).map(|(_, name)| *name)
}

/// The fields of `/proc/<pid>/stat` this module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// `R`, `S`, `Z` (zombie), `X` (dead), …
    state: char,
    pgrp: i32,
    session: i32,
    start_time: u64,
}

impl Stat {
    /// A zombie or a dying process: it runs nothing any more.
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` if there is no such process.
fn read_stat(pid: i32) -> Result<Option<Stat>, GroupError> {
    let path = format!("/proc/{pid}/stat");
    match fs::read_to_string(&path) {
        Ok(text) => parse_stat(&text).map(Some).ok_or(GroupError::BadStat { pid }),
        // ESRCH: the process ended between opening and reading the file.
        Err(error)
            if error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(Errno::SRCH.raw_os_error()) =>
        {
            Ok(None)
        }
        Err(source) => Err(GroupError::Proc { path, source }),
    }
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so the fields
/// after it are counted from the *last* `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, after_comm) = text.rsplit_once(')')?;
    // Fields 3 onwards: state, ppid, pgrp, session, … starttime is field 22.
    let fields: Vec<&str> = after_comm.split_ascii_whitespace().collect();
    let field = |number: usize| fields.get(number - 3).copied();
    let mut state = field(3)?.chars();
    let stat = Stat {
        state: state.next()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    };
    state.next().is_none().then_some(stat)
}

/// Every process now in group `pgid`, read from `/proc`. Processes that end
/// while the directory is read are skipped.
fn members(pgid: i32) -> Result<Vec<Stat>, GroupError> {
    let proc_error = |source| GroupError::Proc { path: "/proc".into(), source };
    let mut found = Vec::new();
    for item in fs::read_dir("/proc").map_err(proc_error)? {
        let item = item.map_err(proc_error)?;
        let Some(pid) = item.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        match read_stat(pid) {
            Ok(Some(stat)) if stat.pgrp == pgid => found.push(stat),
            Ok(_) => {}
            // A process's stat can be unreadable for a moment while it exits.
            Err(error) => tracing::debug!(pid, %error, "skipping a process while listing a group"),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line whose command name (`a) b (c)`) would confuse a split at the first `)`.
    const TRICKY: &str = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 120 0 0 0 0 0 0 0 20 0 1 0 987654 2400000 \
                          100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = parse_stat(TRICKY).expect("parse");
        assert_eq!(stat, Stat { state: 'S', pgrp: 4242, session: 4242, start_time: 987_654 });
        assert_eq!(parse_stat("12 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0").map(|s| s.state), Some('Z'));
    }

    #[test]
    fn a_truncated_or_garbled_stat_is_not_parsed() {
        assert_eq!(parse_stat("12 (sh) S 1 7 7 0"), None);
        assert_eq!(parse_stat("12 sh S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55"), None);
        assert_eq!(parse_stat("12 (sh) S 1 x 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55"), None);
    }

    #[test]
    fn our_own_stat_parses_with_a_start_time() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let stat = read_stat(me).expect("read").expect("we exist");
        assert!(stat.start_time > 0);
    }

    #[test]
    fn signal_names_come_from_the_platform_numbers() {
        assert_eq!(signal_name(Signal::KILL.as_raw()), Some("SIGKILL"));
        assert_eq!(signal_name(Signal::TERM.as_raw()), Some("SIGTERM"));
        assert_eq!(signal_name(Signal::SEGV.as_raw()), Some("SIGSEGV"));
        assert_eq!(signal_name(64), None);
    }

    #[test]
    fn groups_that_are_not_ours_to_kill_are_refused() {
        for pgid in [-1, 0, 1] {
            assert!(!kill_group_if_same(ProcessIdentity { pgid, start_time: 0 }).expect("refused"));
            assert!(signal_group(pgid, Signal::KILL).is_err());
        }
    }
}
