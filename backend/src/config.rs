//! The manager's settings: flags, each with an environment variable (SPEC §5).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The workflow manager server.
#[derive(Debug, Clone, Parser)]
#[command(name = "manager", version, about)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "MANAGER_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// Directory of the embedded SQLite database; created if missing.
    #[arg(long, env = "MANAGER_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The built admin panel to serve (`trunk build --release` writes it).
    #[arg(long, env = "MANAGER_DIST", default_value = "dist")]
    pub dist: PathBuf,
    /// How long a token from `POST /tokens` stays valid, in seconds (default 10 h).
    #[arg(long, env = "MANAGER_TOKEN_TTL_SECONDS", default_value_t = 36_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub token_ttl_seconds: u64,
    /// The first admin's password, used only when the data dir has no users.
    /// Read from `MANAGER_ADMIN_PASSWORD` only: a flag would show it in `ps`.
    #[arg(skip)]
    pub admin_password: Option<String>,
}

impl Config {
    /// How long new tokens stay valid.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_seconds)
    }
}
