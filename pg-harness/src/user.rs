//! Who the server runs as: `initdb` and `postgres` refuse root.

use std::ffi::CString;

use crate::HarnessError;

/// The user the server runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// A user to switch to before running `initdb` and `postgres`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl ServerUser {
    /// `None` when not running as root: then the server runs as the caller.
    pub(crate) fn for_this_process() -> Result<Option<ServerUser>, HarnessError> {
        if !rustix::process::geteuid().is_root() {
            return Ok(None);
        }
        let user = lookup(UNPRIVILEGED)
            .map_err(|reason| HarnessError::NoServerUser { user: UNPRIVILEGED.to_owned(), reason })?;
        if user.uid == 0 {
            let reason = "its uid is 0".to_owned();
            return Err(HarnessError::NoServerUser { user: UNPRIVILEGED.to_owned(), reason });
        }
        Ok(Some(user))
    }
}

/// The user's ids from the passwd database (NSS, so not only /etc/passwd).
fn lookup(name: &str) -> Result<ServerUser, String> {
    let name = CString::new(name).map_err(|_| "a NUL in the name".to_owned())?;
    let mut buffer = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: every pointer is to a live local of the right type, and the
        // buffer's length is passed with it; `found` points into `entry` or is null.
        let (code, found) = unsafe {
            let mut entry: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let code = libc::getpwnam_r(name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found);
            (code, (!found.is_null()).then_some(ServerUser { uid: entry.pw_uid, gid: entry.pw_gid }))
        };
        match (code, found) {
            (0, Some(user)) => return Ok(user),
            (0, None) => return Err("no such user".to_owned()),
            (libc::ERANGE, _) if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 4, 0),
            (code, _) => {
                let error = std::io::Error::from_raw_os_error(code);
                return Err(format!("getpwnam_r: {error}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_with_uid_zero() {
        assert_eq!(lookup("root"), Ok(ServerUser { uid: 0, gid: 0 }));
    }

    #[test]
    fn an_unknown_user_is_an_error() {
        assert_eq!(lookup("no-such-user-pg-harness"), Err("no such user".to_owned()));
    }
}
