//! `manager users …`: operators manage users on the store directly (the data
//! dir, or the PostgreSQL database of `--database`), also while the server
//! runs (the database serializes the writes). Passwords come from
//! standard input only, never from arguments, which `ps` would show.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use shared::{Role, Timestamp};

use crate::auth::{password, MAX_USERNAME_BYTES};
use crate::config::Config;
use crate::store::users::UserRecord;
use crate::store::{open_writer, Db, Store};

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

/// Runs `command` on the store `config` names, returning what it did.
pub fn run(config: &Config, command: UsersCommand, stdin: &mut dyn BufRead) -> anyhow::Result<String> {
    // The password is read before anything is opened (a prompt that fails costs nothing).
    let password = match &command {
        UsersCommand::Add { name, password_stdin, .. } => {
            check_name(name)?;
            Some(read_password(*password_stdin, stdin)?)
        }
        UsersCommand::SetPassword { password_stdin, .. } => Some(read_password(*password_stdin, stdin)?),
        UsersCommand::List | UsersCommand::Remove { .. } => None,
    };
    // A runtime of its own on a thread of its own: callers may be inside one.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async {
                    let store = match &config.database {
                        None => {
                            let dir = &config.data_dir;
                            let conn =
                                open_writer(dir).with_context(|| format!("opening data dir {}", dir.display()))?;
                            Store::Sqlite(Db::new(conn, "users", 16)?)
                        }
                        Some(url) => {
                            let pg = crate::store::postgres::Pg::new(url, 2, 16)?;
                            pg.migrate().await.context("opening the PostgreSQL database of --database")?;
                            Store::Postgres(pg)
                        }
                    };
                    apply(&store, command, password).await
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the users command panicked"))?
    })
}

async fn apply(store: &Store, command: UsersCommand, password: Option<String>) -> anyhow::Result<String> {
    let password = password.unwrap_or_default();
    match command {
        UsersCommand::Add { name, role, .. } => {
            let user = UserRecord {
                username: name.clone(),
                role,
                password_hash: password::hash(&password).map_err(anyhow::Error::msg)?,
                created_at: Timestamp::now(),
            };
            if !store.insert_user(user).await? {
                bail!("user `{name}` already exists");
            }
            Ok(format!("User `{name}` added with role {role}."))
        }
        UsersCommand::List => {
            let mut lines = vec![format!("{:<24} {:<6} {}", "USERNAME", "ROLE", "CREATED AT")];
            for user in store.users().await? {
                lines.push(format!("{:<24} {:<6} {}", user.username, user.role, user.created_at));
            }
            Ok(lines.join("\n"))
        }
        UsersCommand::Remove { name } => {
            let Some(user) = store.user(name.clone()).await? else { bail!("no user `{name}`") };
            let admins = store.users().await?.iter().filter(|u| u.role == Role::Admin).count();
            if user.role == Role::Admin && admins == 1 {
                bail!("`{name}` is the last admin; add another admin first");
            }
            store.remove_user(name.clone()).await?;
            Ok(format!("User `{name}` removed; their tokens no longer work."))
        }
        UsersCommand::SetPassword { name, .. } => {
            let hash = password::hash(&password).map_err(anyhow::Error::msg)?;
            if !store.set_password(name.clone(), hash).await? {
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
    use crate::store::users as store;

    fn run_with(dir: &std::path::Path, command: UsersCommand, input: &str) -> anyhow::Result<String> {
        run(&Config::local(dir.to_owned()), command, &mut input.as_bytes())
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
