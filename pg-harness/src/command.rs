//! How PostgreSQL's programs are run: the server's as the server's user and
//! bound to the test process's life, the clients with nothing of the caller's
//! environment (a `PGHOST` or `PGOPTIONS` there must not change what they do).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rustix::process::{getpid, getppid, set_parent_process_death_signal, Signal};

use crate::user::ServerUser;
use crate::HarnessError;

/// `program` (initdb, postgres) as `user`, in `dir`, with a fixed environment;
/// it gets `death_signal` when the thread that spawns it ends (the kernel's
/// parent is the thread, not the process; see `postmaster.rs`).
pub(crate) fn server_command(program: &Path, user: Option<ServerUser>, dir: &Path, death_signal: Signal) -> Command {
    let mut command = Command::new(program);
    // UTC: the cluster's `timezone`, and initdb need not probe the system's.
    command.env_clear().env("LC_ALL", "C").env("TZ", "UTC").current_dir(dir).stdin(Stdio::null());
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    let parent = getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // raw system calls (no allocation, no locks), which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // The kernel clears the parent-death signal when the uid changes; std
            // runs this closure after its setgid/setuid, so the signal stays set.
            set_parent_process_death_signal(Some(death_signal))?;
            // The parent may have died before the line above: then no signal would come.
            if getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
    command
}

/// A client program (psql) run as the caller, with only `LC_ALL=C` in its environment.
pub(crate) fn client_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("LC_ALL", "C").stdin(Stdio::null());
    command
}

/// Runs `command` to its end; its stdout if it succeeded, else an error with
/// the command line and its stderr.
pub(crate) fn run(command: &mut Command) -> Result<String, HarnessError> {
    let failed = |command: &Command, status: String, stderr: &[u8]| HarnessError::Command {
        command: describe(command),
        status,
        stderr: String::from_utf8_lossy(stderr).trim().to_owned(),
    };
    let output = command.output().map_err(|error| failed(command, format!("did not start: {error}"), &[]))?;
    if !output.status.success() {
        return Err(failed(command, output.status.to_string(), &output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command line, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
