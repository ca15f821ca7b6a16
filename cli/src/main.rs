//! `cfy`: the manager's command-line client. The maintenance-mode and
//! executions commands arrive with the CLI issue; today it knows its options.

use clap::Parser;

/// The manager's command-line client.
#[derive(Debug, Parser)]
#[command(name = "cfy", version, about)]
struct Cli {
    /// The manager's URL.
    #[arg(long, global = true, env = "CFY_MANAGER", default_value = "http://127.0.0.1:3000")]
    manager: String,
}

fn main() {
    let cli = Cli::parse();
    println!("cfy {} for the manager at {}; see `cfy --help`", env!("CARGO_PKG_VERSION"), cli.manager);
}
