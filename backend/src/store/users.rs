//! Users and their tokens. Passwords are stored as argon2 PHC strings and
//! tokens as SHA-256 digests: the database never holds a usable secret.

use rusqlite::{params, Connection, OptionalExtension};
use shared::{Role, Timestamp};
use uuid::Uuid;

use super::maintenance::parse_time;
use super::{parse_column, StoreError};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The name they sign in with.
    pub username: String,
    /// What they may do.
    pub role: Role,
    /// The argon2 PHC string of their password.
    pub password_hash: String,
    /// When they were added.
    pub created_at: Timestamp,
}

/// A token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id (not secret).
    pub id: Uuid,
    /// Whose it is.
    pub username: String,
    /// Their role, read with the token.
    pub role: Role,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// How many users there are.
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Adds a user; `false` if the name is taken.
pub fn insert(conn: &Connection, user: &UserRecord) -> Result<bool, StoreError> {
    let added = conn.execute(
        "INSERT INTO users (username, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (username) DO NOTHING",
        params![user.username, user.role.as_str(), user.password_hash, user.created_at.to_string()],
    )?;
    Ok(added == 1)
}

/// One user by name.
pub fn get(conn: &Connection, username: &str) -> Result<Option<UserRecord>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT username, role, password_hash, created_at FROM users WHERE username = ?1")?;
    let row = statement
        .query_row([username], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
        })
        .optional()?;
    row.map(|(username, role, password_hash, created_at)| {
        Ok(UserRecord {
            username,
            role: parse_column("users", "role", &role, Role::parse)?,
            password_hash,
            created_at: parse_column("users", "created_at", &created_at, |s| s.parse().ok())?,
        })
    })
    .transpose()
}

/// Every user, by name.
pub fn list(conn: &Connection) -> Result<Vec<UserRecord>, StoreError> {
    let names: Vec<String> = {
        let mut statement = conn.prepare("SELECT username FROM users ORDER BY username")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut users = Vec::with_capacity(names.len());
    for name in names {
        users.extend(get(conn, &name)?);
    }
    Ok(users)
}

/// Removes a user and their tokens; `false` if there was none.
pub fn remove(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM users WHERE username = ?1", [username])? == 1)
}

/// Sets a new password hash and revokes every token of the user; `false` if
/// there is no such user.
pub fn set_password(conn: &Connection, username: &str, password_hash: &str) -> Result<bool, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let changed =
        tx.execute("UPDATE users SET password_hash = ?2 WHERE username = ?1", params![username, password_hash])?;
    tx.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL",
        params![username, Timestamp::now().to_string()],
    )?;
    tx.commit()?;
    Ok(changed == 1)
}

/// Stores a new token with the digest of its secret.
pub fn insert_token(
    conn: &Connection,
    id: Uuid,
    digest: &str,
    username: &str,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, digest, username, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.to_string(), digest, username, Timestamp::now().to_string(), expires_at.to_string()],
    )?;
    Ok(())
}

/// The token with this id and the digest of its secret, to check a presented
/// token: one query, as this runs on every token-authenticated request.
pub fn token_digest(conn: &Connection, id: Uuid) -> Result<Option<(TokenRecord, String)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT tokens.username, users.role, tokens.expires_at, tokens.revoked_at, tokens.digest \
         FROM tokens JOIN users ON users.username = tokens.username WHERE tokens.id = ?1",
    )?;
    let row = statement
        .query_row([id.to_string()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    row.map(|(username, role, expires_at, revoked_at, digest)| {
        let record = TokenRecord {
            id,
            username,
            role: parse_column("users", "role", &role, Role::parse)?,
            expires_at: parse_column("tokens", "expires_at", &expires_at, |s| s.parse().ok())?,
            revoked_at: parse_time("tokens", revoked_at)?,
        };
        Ok((record, digest))
    })
    .transpose()
}

/// The token with this id.
pub fn token_by_id(conn: &Connection, id: Uuid) -> Result<Option<TokenRecord>, StoreError> {
    Ok(token_digest(conn, id)?.map(|(record, _)| record))
}

/// The credential-change counter (migration 0005): it grows whenever a token
/// is revoked or deleted, or a user removed or given a new password or role.
pub fn credential_changes(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached("SELECT n FROM credential_changes WHERE id = 1")?.query_row([], |row| row.get(0))?)
}

/// Revokes a token; `false` if there is no such token or it was already revoked.
pub fn revoke_token(conn: &Connection, id: Uuid) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id.to_string(), Timestamp::now().to_string()],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_writer;

    fn user(name: &str, role: Role) -> UserRecord {
        UserRecord { username: name.into(), role, password_hash: "$argon2id$x".into(), created_at: Timestamp::now() }
    }

    #[test]
    fn users_and_tokens_round_trip_and_password_change_revokes_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        assert_eq!(count(&conn).unwrap(), 0);
        assert!(insert(&conn, &user("alice", Role::User)).unwrap());
        assert!(!insert(&conn, &user("alice", Role::Admin)).unwrap(), "names are unique");
        assert!(insert(&conn, &user("admin", Role::Admin)).unwrap());
        let names: Vec<_> = list(&conn).unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["admin", "alice"]);

        let id = Uuid::new_v4();
        insert_token(&conn, id, "digest-1", "alice", Timestamp::now()).unwrap();
        let (token, digest) = token_digest(&conn, id).unwrap().unwrap();
        assert_eq!((token.id, token.role, token.revoked_at, digest.as_str()), (id, Role::User, None, "digest-1"));
        assert_eq!(token_by_id(&conn, id).unwrap(), Some(token));

        assert!(set_password(&conn, "alice", "$argon2id$y").unwrap());
        assert!(token_by_id(&conn, id).unwrap().unwrap().revoked_at.is_some());
        assert!(!revoke_token(&conn, id).unwrap(), "already revoked");
        assert!(!set_password(&conn, "nobody", "h").unwrap());

        assert!(remove(&conn, "alice").unwrap());
        assert_eq!(token_by_id(&conn, id).unwrap(), None, "tokens go with their user");
        assert!(!remove(&conn, "alice").unwrap());
    }
}
