//! The manager's settings: flags, each with an environment variable (SPEC §5).

use std::path::PathBuf;

use clap::Parser;

/// The workflow manager server.
#[derive(Debug, Clone, Parser)]
#[command(name = "manager", version, about)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "MANAGER_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// Directory of the embedded SQLite database; created if missing.
    #[arg(long, env = "MANAGER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The built admin panel to serve (`trunk build --release` writes it).
    #[arg(long, env = "MANAGER_DIST", default_value = "dist")]
    pub dist: PathBuf,
}
