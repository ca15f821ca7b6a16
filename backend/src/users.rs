//! `manager users …`: operators manage users on the data dir directly, also
//! while the server runs (SQLite serializes the writes). Passwords come from
//! standard input only, never from arguments, which `ps` would show.

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Subcommand;
use shared::{Role, Timestamp};

use crate::auth::{password, MAX_USERNAME_BYTES};
use crate::store::open_writer;
use crate::store::users::{self as store, UserRecord};

/// What to do with users.
#[derive(Debug, Clone, Subcommand)]
pub enum UsersCommand {
    /// Adds a user; the password is read from standard input.
    Add {
        /// The username (letters, digits, `.`, `_`, `-`, `@`; at most 64).
        name: String,
        /// `admin` or `user`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password as one line from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists users and their roles.
    List,
    /// Removes a user and revokes their tokens.
    Remove {
        /// The username.
        name: String,
    },
    /// Sets a new password (from standard input) and revokes the user's tokens.
    SetPassword {
        /// The username.
        name: String,
        /// Read the password as one line from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("`{text}` is not a role: use `admin` or `user`"))
}

/// Runs `command` on the store in `data_dir`, printing what it did.
pub fn run(data_dir: &Path, command: UsersCommand, stdin: &mut dyn BufRead) -> anyhow::Result<String> {
    let mut conn = open_writer(data_dir).with_context(|| format!("opening data dir {}", data_dir.display()))?;
    match command {
        UsersCommand::Add { name, role, password_stdin } => {
            check_name(&name)?;
            let password = read_password(password_stdin, stdin)?;
            let user = UserRecord {
                username: name.clone(),
                role,
                password_hash: password::hash(&password).map_err(anyhow::Error::msg)?,
                created_at: Timestamp::now(),
            };
            if !store::insert(&conn, &user)? {
                bail!("user `{name}` already exists");
            }
            Ok(format!("User `{name}` added with role {role}."))
        }
        UsersCommand::List => {
            let mut lines = vec![format!("{:<24} {:<6} {}", "USERNAME", "ROLE", "CREATED AT")];
            for user in store::list(&conn)? {
                lines.push(format!("{:<24} {:<6} {}", user.username, user.role, user.created_at));
            }
            Ok(lines.join("\n"))
        }
        UsersCommand::Remove { name } => {
            let Some(user) = store::get(&conn, &name)? else { bail!("no user `{name}`") };
            let admins = store::list(&conn)?.iter().filter(|u| u.role == Role::Admin).count();
            if user.role == Role::Admin && admins == 1 {
                bail!("`{name}` is the last admin; add another admin first");
            }
            store::remove(&conn, &name)?;
            Ok(format!("User `{name}` removed; their tokens no longer work."))
        }
        UsersCommand::SetPassword { name, password_stdin } => {
            let password = read_password(password_stdin, stdin)?;
            let hash = password::hash(&password).map_err(anyhow::Error::msg)?;
            if !store::set_password(&mut conn, &name, &hash)? {
                bail!("no user `{name}`");
            }
            Ok(format!("Password of `{name}` changed; their tokens were revoked."))
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.len() > MAX_USERNAME_BYTES || !name.chars().all(allowed) {
        bail!("`{name}` is not a valid username: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`");
    }
    Ok(())
}

fn read_password(from_stdin: bool, stdin: &mut dyn BufRead) -> anyhow::Result<String> {
    if !from_stdin {
        bail!("pass the password on standard input with --password-stdin (never as an argument)");
    }
    let mut line = String::new();
    stdin.read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    password::check_new(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_reader;

    fn run_with(dir: &Path, command: UsersCommand, input: &str) -> anyhow::Result<String> {
        run(dir, command, &mut input.as_bytes())
    }

    #[test]
    fn add_list_set_password_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let add = |name: &str, role| UsersCommand::Add { name: name.into(), role, password_stdin: true };
        assert_eq!(
            run_with(dir.path(), add("ops", Role::Admin), "long enough\n").unwrap(),
            "User `ops` added with role admin."
        );
        run_with(dir.path(), add("alice", Role::User), "alice's password\n").unwrap();
        assert!(run_with(dir.path(), add("alice", Role::User), "another one\n")
            .unwrap_err()
            .to_string()
            .contains("exists"));
        assert!(run_with(dir.path(), add("bad name", Role::User), "whatever1\n").is_err());
        assert!(run_with(dir.path(), add("bob", Role::User), "short\n")
            .unwrap_err()
            .to_string()
            .contains("at least 8"));

        let list = run_with(dir.path(), UsersCommand::List, "").unwrap();
        assert!(list.contains("alice") && list.contains("ops") && list.contains("admin"), "{list}");

        let no_stdin = UsersCommand::SetPassword { name: "alice".into(), password_stdin: false };
        assert!(run_with(dir.path(), no_stdin, "").unwrap_err().to_string().contains("--password-stdin"));
        let set = UsersCommand::SetPassword { name: "alice".into(), password_stdin: true };
        run_with(dir.path(), set, "a new password\n").unwrap();
        let conn = open_reader(dir.path()).unwrap();
        assert!(password::verify("a new password", &store::get(&conn, "alice").unwrap().unwrap().password_hash));

        let last_admin = UsersCommand::Remove { name: "ops".into() };
        assert!(run_with(dir.path(), last_admin, "").unwrap_err().to_string().contains("last admin"));
        run_with(dir.path(), UsersCommand::Remove { name: "alice".into() }, "").unwrap();
        assert_eq!(store::get(&conn, "alice").unwrap(), None);
    }
}
