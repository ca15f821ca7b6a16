//! The command line, as clap derive structs (SPEC §5–6).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use uuid::Uuid;

/// The manager's command-line client.
#[derive(Debug, Parser)]
#[command(name = "cfy", version, about, propagate_version = true)]
pub struct Cli {
    /// Connection and output options.
    #[command(flatten)]
    pub global: Global,
    /// The password, before the command (`cfy -p PW maintenance-mode status`);
    /// after it, `-p` is Cloudify's flag for workflow parameters.
    #[arg(short = 'p', id = "short_password", value_name = "PASSWORD")]
    pub password: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The manager's URL [default: http://127.0.0.1:3000, with --ssl https://127.0.0.1:3000].
    #[arg(long, global = true, env = "CFY_MANAGER")]
    pub manager: Option<String>,
    /// Connect over HTTPS, as Cloudify's `--ssl`: an http:// manager URL is
    /// taken as https://.
    #[arg(long, global = true, env = "CFY_SSL")]
    pub ssl: bool,
    /// The CA or self-signed certificate (PEM) to verify the manager's HTTPS
    /// certificate with, trusted instead of the system's roots, as Cloudify's
    /// `--rest-certificate`.
    #[arg(long, global = true, env = "CFY_REST_CERTIFICATE", value_name = "PEM")]
    pub rest_certificate: Option<PathBuf>,
    /// The user to sign in as.
    #[arg(short, long, global = true, env = "CFY_USERNAME", default_value = "admin")]
    pub username: String,
    /// The password (prefer the CFY_PASSWORD environment variable: arguments show in `ps`).
    /// (`-p` before the command.)
    #[arg(long, global = true, env = "CFY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// More detail: -v adds tables, -vvv logs every HTTP request to stderr.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Where the manager listens when no URL is given (its `--bind` default).
const DEFAULT_MANAGER: &str = "127.0.0.1:3000";

impl Global {
    /// The manager's base URL (no trailing slash): `--manager`, or this
    /// machine's manager; `https://` with `--ssl`.
    pub fn manager_url(&self) -> String {
        let given = self.manager.as_deref().unwrap_or(DEFAULT_MANAGER).trim_end_matches('/');
        let (scheme, rest) = given.split_once("://").unwrap_or(("http", given));
        let scheme = if self.ssl && scheme.eq_ignore_ascii_case("http") { "https" } else { scheme };
        format!("{scheme}://{rest}")
    }
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Handle the manager's maintenance mode.
    #[command(subcommand)]
    MaintenanceMode(MaintenanceMode),
    /// Handle workflow executions.
    #[command(subcommand)]
    Executions(Executions),
    /// The workflow catalog.
    #[command(subcommand)]
    Workflows(Workflows),
    /// Show executions' events (their workflow's steps and output).
    #[command(subcommand)]
    Events(Events),
    /// Show the manager's services (REST service, database, workflow runner, …).
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cfy workflows …`
#[derive(Debug, Subcommand)]
pub enum Workflows {
    /// List the workflows executions can run.
    List {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cfy events …` (Cloudify's options and output).
#[derive(Debug, Subcommand)]
pub enum Events {
    /// List an execution's events: its workflow's steps and every line its program wrote.
    List {
        /// The execution.
        #[arg(value_name = "EXECUTION_ID")]
        execution: Option<Uuid>,
        /// The execution (deprecated in Cloudify's client: give it as an argument).
        #[arg(short = 'e', long = "execution-id", value_name = "EXECUTION_ID", conflicts_with = "execution")]
        execution_option: Option<Uuid>,
        /// Follow the execution until it ends, printing events as they come.
        #[arg(long)]
        tail: bool,
        /// How many events to skip.
        #[arg(short = 'o', long = "pagination-offset", default_value_t = 0)]
        offset: u64,
        /// How many events to show (at most 1000).
        #[arg(short = 's', long = "pagination-size", default_value_t = 1000)]
        size: u32,
    },
}

/// `cfy maintenance-mode …`
#[derive(Debug, Subcommand)]
pub enum MaintenanceMode {
    /// Stop admitting executions; enter maintenance once none remain.
    Activate {
        /// Wait until the manager is in maintenance mode.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (0 = no limit).
        #[arg(long)]
        timeout: Option<u64>,
        /// Why, shown to everyone while maintenance is on.
        #[arg(long)]
        reason: Option<String>,
        /// After this many seconds of waiting, cancel the remaining executions
        /// (and force-cancel those still alive after the cancel grace).
        #[arg(long, value_name = "SECONDS")]
        drain_deadline: Option<u64>,
        /// Read-only maintenance: reads (GET, HEAD) keep working, changes are refused.
        #[arg(long)]
        read_only: bool,
    },
    /// Leave maintenance mode; queued executions start.
    Deactivate,
    /// Show the maintenance mode's status.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Schedule a maintenance window: maintenance mode from --start to --end.
    ///
    /// Times (T) are RFC 3339 with an offset (`2030-01-01T10:00:00+02:00`,
    /// `2030-01-01T08:00:00Z`); or `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD HH:MM[:SS]`
    /// without an offset, read as LOCAL time on this machine; or relative to
    /// now: `+90s`, `+30m`, `+2h`, `+1d`.
    Schedule(Schedule),
    /// List the maintenance windows (newest start first).
    Windows {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a scheduled maintenance window, or end the active one early.
    CancelWindow {
        /// The window's id.
        id: Uuid,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the maintenance mode's history (newest first).
    History {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// How many rows to show (at most 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        size: u32,
    },
    /// Show each webhook URL's backlog, deliveries and failures, and its recent deliveries
    /// (newest first; -v adds their errors).
    Webhooks {
        /// Print the raw JSON (every recent delivery the manager keeps).
        #[arg(long)]
        json: bool,
        /// How many recent deliveries to show per URL (0: no table).
        #[arg(long, value_name = "N", default_value_t = crate::output::DEFAULT_RECENT)]
        recent: usize,
    },
}

/// `cfy maintenance-mode schedule …`
#[derive(Debug, Args)]
pub struct Schedule {
    /// When maintenance mode starts: RFC 3339 with an offset, `YYYY-MM-DD HH:MM[:SS]`
    /// in LOCAL time, or `+90s` / `+30m` / `+2h` / `+1d` from now.
    #[arg(long, value_name = "T")]
    pub start: String,
    /// When it ends (the same forms; relative ones count from now, not from
    /// --start); none: it lasts until an admin deactivates.
    #[arg(long, value_name = "T")]
    pub end: Option<String>,
    /// Why, shown in the notice and while maintenance is on.
    #[arg(long)]
    pub reason: Option<String>,
    /// Announce it this many seconds before its start (the manager's default: 3600).
    #[arg(long, value_name = "SECONDS")]
    pub notice: Option<u64>,
    /// The drain deadline of its activation, in seconds (see `activate --drain-deadline`).
    #[arg(long, value_name = "SECONDS")]
    pub drain_deadline: Option<u64>,
    /// Read-only maintenance: reads (GET, HEAD) keep working, changes are refused.
    #[arg(long)]
    pub read_only: bool,
    /// Print the window as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cfy executions …` (Cloudify's options and output).
#[derive(Debug, Subcommand)]
pub enum Executions {
    /// List executions (oldest first, as Cloudify's client sorts by creation).
    List {
        /// Only this deployment's executions.
        #[arg(short = 'd', long = "deployment-id")]
        deployment: Option<String>,
        /// Sort by this field.
        #[arg(long = "sort-by", default_value = "created_at")]
        sort_by: String,
        /// Sort in descending order.
        #[arg(long)]
        descending: bool,
        /// How many executions to skip.
        #[arg(short = 'o', long = "pagination-offset", default_value_t = 0)]
        offset: u64,
        /// How many executions to show (at most 1000).
        #[arg(short = 's', long = "pagination-size", default_value_t = 1000)]
        size: u32,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one execution.
    Get {
        /// The execution's id.
        id: Uuid,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a workflow on a deployment and follow it to its end.
    Start {
        /// The workflow to run.
        workflow: String,
        /// The deployment to run it on.
        #[arg(short = 'd', long = "deployment-id")]
        deployment: String,
        /// Workflow parameters: `KEY=VALUE[;KEY=VALUE…]` or a JSON object (repeatable).
        #[arg(short = 'p', long = "parameters", value_name = "PARAMETERS")]
        parameters: Vec<String>,
        /// Shorthand for `-p duration_seconds=S`: how long it works (default 5).
        #[arg(long, value_name = "S")]
        duration: Option<f64>,
        /// During maintenance, queue it instead of failing.
        #[arg(long)]
        queue: bool,
        /// Stop following it after this many seconds (it keeps running).
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
    /// Cancel an execution.
    Cancel {
        /// The execution's id.
        id: Uuid,
        /// Stop it at once (force-cancel).
        #[arg(short = 'f', long)]
        force: bool,
        /// Stop it and everything it started at once (the same as --force here).
        #[arg(short = 'k', long)]
        kill: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(manager: Option<&str>, ssl: bool) -> String {
        let global = Global {
            manager: manager.map(str::to_owned),
            ssl,
            rest_certificate: None,
            username: "admin".into(),
            password: None,
            verbose: 0,
        };
        global.manager_url()
    }

    #[test]
    fn ssl_makes_the_manager_url_https_and_keeps_its_host_and_port() {
        assert_eq!(url(None, false), "http://127.0.0.1:3000");
        assert_eq!(url(None, true), "https://127.0.0.1:3000");
        assert_eq!(url(Some("http://manager.example:8443/"), true), "https://manager.example:8443");
        assert_eq!(url(Some("HTTP://manager.example"), false), "HTTP://manager.example");
        assert_eq!(url(Some("https://manager.example"), false), "https://manager.example");
        assert_eq!(url(Some("manager.example:3000"), false), "http://manager.example:3000");
        assert_eq!(url(Some("manager.example:3000"), true), "https://manager.example:3000");
    }
}
