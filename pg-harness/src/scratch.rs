//! A server's directory: `<temp>/pg-harness-<pid>-<random>/` holding `data/`
//! (the cluster), `socket/` and `postgres.log`, private (0700) and owned by
//! the server's user. The pid in the name is the test process's: a directory
//! whose process is gone (killed, or a [`crate::shared`] server, whose
//! directory is never removed) is removed by the next server's start.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::user::ServerUser;
use crate::HarnessError;

const PREFIX: &str = "pg-harness-";

/// A server's directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct Scratch {
    pub(crate) data_dir: PathBuf,
    pub(crate) socket_dir: PathBuf,
    pub(crate) log_file: PathBuf,
    root: TempDir,
}

impl Scratch {
    /// Removes stale directories, then makes a new one for a server run as `user`.
    pub(crate) fn create(user: Option<ServerUser>) -> Result<Scratch, HarnessError> {
        let temp = std::env::temp_dir();
        remove_stale(&temp);
        let root = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&temp)
            .map_err(HarnessError::io(format!("creating a directory in {}", temp.display())))?;
        let socket_dir = root.path().join("socket");
        fs::create_dir(&socket_dir).map_err(HarnessError::io(format!("creating {}", socket_dir.display())))?;
        // Private, whatever the umask: only the server's user may connect (and root).
        for dir in [root.path(), &socket_dir] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(HarnessError::io(format!("chmod 0700 {}", dir.display())))?;
        }
        let log_file = root.path().join("postgres.log");
        fs::File::create(&log_file).map_err(HarnessError::io(format!("creating {}", log_file.display())))?;
        if let Some(user) = user {
            for path in [root.path(), &socket_dir, &log_file] {
                chown(path, Some(user.uid), Some(user.gid)).map_err(HarnessError::io(format!(
                    "chown {}:{} {}",
                    user.uid,
                    user.gid,
                    path.display()
                )))?;
            }
        }
        // initdb creates it, and refuses a directory that exists and is not empty.
        let data_dir = root.path().join("data");
        Ok(Scratch { data_dir, socket_dir, log_file, root })
    }

    /// The directory itself: the server's programs run in it.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }
}

/// Removes the harness's directories in `temp` whose test process has ended.
fn remove_stale(temp: &Path) {
    // Without /proc every process would look dead, and live servers' directories would go.
    if !Path::new("/proc/self/stat").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(owner_pid) else { continue };
        if pid != std::process::id() && !process_runs(pid) {
            // Another test process may be removing it too, or it may belong to another user.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The test process's pid in a directory's name, if it is one of the harness's.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn process_runs(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`; comm may hold spaces and parentheses, the last `)` ends it.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_read_from_the_harness_names_only() {
        assert_eq!(owner_pid("pg-harness-1234-AbC9xy"), Some(1234));
        assert_eq!(owner_pid("pg-harness-x-AbC9xy"), None);
        assert_eq!(owner_pid("other-1234-AbC9xy"), None);
    }

    #[test]
    fn this_process_runs_and_a_reaped_child_does_not() {
        assert!(process_runs(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_runs(pid));
    }

    #[test]
    fn a_directory_of_an_ended_process_is_removed_and_a_live_ones_kept() {
        let temp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = temp.path().join(format!("{PREFIX}{dead}-AbC9xy"));
        let live = temp.path().join(format!("{PREFIX}{}-AbC9xy", std::process::id()));
        let unrelated = temp.path().join(format!("other-{dead}-AbC9xy"));
        for dir in [&stale, &live, &unrelated] {
            fs::create_dir_all(dir.join("data")).unwrap();
        }

        remove_stale(temp.path());

        assert!(!stale.exists());
        assert!(live.exists());
        assert!(unrelated.exists());
    }
}
