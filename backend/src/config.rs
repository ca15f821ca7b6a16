//! The manager's settings: flags, each with an environment variable (SPEC §5).

use std::path::PathBuf;
use std::sync::Arc;
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
    /// A built admin panel to serve (`scripts/build-panel` writes it) when it
    /// holds an index.html; otherwise the one built into this binary.
    #[arg(long, env = "MANAGER_DIST", default_value = "dist")]
    pub dist: PathBuf,
    /// How long a token from `POST /tokens` stays valid, in seconds: 60 (a
    /// minute) to 31536000 (a year); default 36000 (10 hours).
    #[arg(long, env = "MANAGER_TOKEN_TTL_SECONDS", default_value_t = 36_000, value_name = "SECONDS",
          value_parser = parse_token_ttl)]
    pub token_ttl_seconds: u64,
    /// How many database jobs may wait for each of the manager's database
    /// threads; beyond that, requests are refused with 503 `overloaded`.
    #[arg(long, env = "MANAGER_QUEUE_CAPACITY", default_value_t = 2048, value_name = "JOBS",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_capacity: u32,
    /// How long a client may take to send a request head, and so how long a
    /// keep-alive connection may sit idle, before it is closed (seconds).
    #[arg(long, env = "MANAGER_REQUEST_HEAD_TIMEOUT_SECONDS", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_head_timeout_seconds: u64,
    /// The most connections served at once; at the limit (or when open files
    /// run short) the longest-idle connections are closed to make room.
    #[arg(long, env = "MANAGER_MAX_CONNECTIONS", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(16..))]
    pub max_connections: u32,
    /// The workflow catalog: every executable file here is a workflow, its id
    /// the file name without extension (read again on every use).
    #[arg(long, env = "MANAGER_WORKFLOWS", default_value = "workflows", value_name = "DIR")]
    pub workflows: PathBuf,
    /// How long a cancelled workflow may take to exit after SIGTERM before its
    /// process group gets SIGKILL (seconds).
    #[arg(long, env = "MANAGER_CANCEL_GRACE_SECONDS", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub cancel_grace_seconds: u64,
    /// The PostgreSQL database several replicas share (a libpq URL such as
    /// `postgres://manager@127.0.0.1:5432/manager` or `postgresql:///manager?host=/run/pg`);
    /// absent: the embedded SQLite database in the data dir.
    #[arg(long = "database", env = "MANAGER_DATABASE_URL", value_name = "URL", global = true)]
    pub database: Option<String>,
    /// This replica's name among the replicas on one database (default: the
    /// host name and the bind port).
    #[arg(long, env = "MANAGER_REPLICA_ID", value_name = "NAME")]
    pub replica_id: Option<String>,
    /// How long a replica may go without renewing its lease before the others
    /// fail its executions (seconds; PostgreSQL only).
    #[arg(long, env = "MANAGER_LEASE_SECONDS", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_seconds: u64,
    /// At most this many workflow programs run on this replica at once; an
    /// admitted execution without a free slot waits `pending` (SPEC §12).
    #[arg(long, env = "MANAGER_MAX_RUNNING", default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_running: u32,
    // Operations (SPEC §13): logs.
    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object a line: time, level, message, fields, the request's spans with
    /// its id) for log collectors.
    #[arg(long, env = "MANAGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The first admin's password, used only when the data dir has no users.
    /// Read from `MANAGER_ADMIN_PASSWORD` only: a flag would show it in `ps`.
    #[arg(skip)]
    pub admin_password: Option<String>,
    /// Serve `GET /metrics` without credentials on a bind that is not
    /// loopback (on loopback it is always open; elsewhere it wants an admin).
    #[arg(long, env = "MANAGER_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Where to POST every maintenance event, signed (SPEC §11): an http(s)
    /// URL; repeat the flag for several. Without the flag, the URLs of
    /// MANAGER_WEBHOOKS, separated by commas.
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    /// The secret of the webhooks' `X-Manager-Signature` (HMAC-SHA256);
    /// prefer the environment variable: arguments show in `ps`.
    #[arg(long, env = "MANAGER_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub webhook_secret: Option<crate::webhooks::Secret>,
    // TLS (SPEC §13).
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate
    /// first); needs --tls-key. SIGHUP re-reads both files.
    #[arg(long, env = "MANAGER_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1); needs --tls-cert.
    #[arg(long, env = "MANAGER_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `--log-format`: how log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object a line (tracing-subscriber's JSON format).
    Json,
}

/// The shortest token lifetime accepted: shorter would end sessions mid-task.
pub const MIN_TOKEN_TTL_SECONDS: u64 = 60;
/// The longest token lifetime accepted: a year (a token is a password for that long).
pub const MAX_TOKEN_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// `--token-ttl-seconds`: refused outside 60 s … 1 year, with the range in the
/// message (clap adds the flag's name), never silently replaced.
fn parse_token_ttl(text: &str) -> Result<u64, String> {
    let range = format!(
        "must be a whole number of seconds from {MIN_TOKEN_TTL_SECONDS} (a minute) to {MAX_TOKEN_TTL_SECONDS} (a year)"
    );
    match text.trim().parse::<u64>() {
        Ok(seconds) if (MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&seconds) => Ok(seconds),
        _ => Err(range),
    }
}

impl Config {
    /// The defaults, on `data_dir`, listening on a free loopback port: for
    /// tests and benchmarks, which then set what they need.
    pub fn local(data_dir: PathBuf) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            data_dir,
            dist: PathBuf::from("dist"),
            token_ttl_seconds: 36_000,
            queue_capacity: 2048,
            request_head_timeout_seconds: 10,
            max_connections: 10_000,
            workflows: PathBuf::from("workflows"),
            cancel_grace_seconds: 30,
            database: None,
            replica_id: None,
            lease_seconds: 10,
            max_running: 64,
            log_format: LogFormat::Text,
            admin_password: None,
            metrics_public: false,
            webhooks: Vec::new(),
            webhook_secret: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// Whether `GET /metrics` answers without credentials: on a loopback bind,
    /// or when `--metrics-public` says so (elsewhere it wants an admin).
    pub fn metrics_open(&self) -> bool {
        let loopback = self.bind.parse::<std::net::SocketAddr>().is_ok_and(|address| address.ip().is_loopback())
            || self.bind.starts_with("localhost:");
        self.metrics_public || loopback
    }

    /// How long a request head may take (see `--request-head-timeout-seconds`).
    pub fn request_head_timeout(&self) -> Duration {
        Duration::from_secs(self.request_head_timeout_seconds)
    }

    /// The connection limits of this process (see [`crate::server`]).
    pub fn connection_limits(&self) -> crate::server::Limits {
        let max = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        crate::server::Limits::for_this_process(self.request_head_timeout(), max)
    }

    /// How many jobs may wait for each database thread.
    pub fn queue_capacity(&self) -> usize {
        usize::try_from(self.queue_capacity).unwrap_or(usize::MAX)
    }

    /// How long a cancel waits between SIGTERM and SIGKILL.
    pub fn cancel_grace(&self) -> Duration {
        Duration::from_secs(self.cancel_grace_seconds)
    }

    /// How many PostgreSQL connections this replica's pool may hold.
    /// (16: three replicas and their listeners and heartbeats stay within
    /// PostgreSQL's default 100 connections.)
    pub fn pool_size(&self) -> usize {
        16
    }

    /// How many programs may run on this replica at once.
    pub fn max_running(&self) -> usize {
        usize::try_from(self.max_running).unwrap_or(usize::MAX)
    }

    /// How long a replica's lease lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// This replica's name: `--replica-id`, or the host name and the bind
    /// port (the process id when the port is chosen by the system).
    pub fn replica_id(&self) -> String {
        if let Some(id) = self.replica_id.as_deref().filter(|id| !id.trim().is_empty()) {
            return id.trim().to_owned();
        }
        let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
        match self.bind.rsplit_once(':').map(|(_, port)| port) {
            Some(port) if port != "0" => format!("{host}:{port}"),
            _ => format!("{host}:pid{}", std::process::id()),
        }
    }

    /// The webhooks to deliver to, if any; a clear refusal of what cannot work.
    pub fn webhooks(&self) -> Result<Option<crate::webhooks::Settings>, String> {
        // Only the variable is split on commas: a flag's URL may hold one.
        let from_env = || -> Vec<String> {
            std::env::var("MANAGER_WEBHOOKS")
                .map(|urls| urls.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let urls = if self.webhooks.is_empty() { from_env() } else { self.webhooks.clone() };
        crate::webhooks::Settings::parse(&urls, self.webhook_secret.as_ref())
    }

    /// How long new tokens stay valid.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_seconds)
    }

    /// The certificate and key to serve HTTPS with, read now (`None`: plain
    /// HTTP); a refusal names the flag and the file at fault.
    pub fn tls(&self) -> Result<Option<Arc<crate::tls::Certificates>>, crate::tls::TlsError> {
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => crate::tls::TlsFiles { cert: cert.clone(), key: key.clone() },
            (None, None) => return Ok(None),
            // clap already refuses these (`requires`); a Config built in code may not.
            (Some(_), None) => {
                return Err(crate::tls::TlsError::Incomplete { given: "--tls-cert", missing: "--tls-key" })
            }
            (None, Some(_)) => {
                return Err(crate::tls::TlsError::Incomplete { given: "--tls-key", missing: "--tls-cert" })
            }
        };
        crate::tls::Certificates::load(files).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::try_parse_from(std::iter::once("manager").chain(args.iter().copied())).map_err(|e| e.to_string())
    }

    #[test]
    fn metrics_are_open_on_loopback_or_when_public_and_want_an_admin_elsewhere() {
        let on = |bind: &str, public: bool| {
            Config { bind: bind.into(), metrics_public: public, ..Config::local(PathBuf::from("/tmp/x")) }
                .metrics_open()
        };
        assert!(on("127.0.0.1:3000", false));
        assert!(on("[::1]:3000", false));
        assert!(on("localhost:3000", false));
        assert!(!on("0.0.0.0:3000", false));
        assert!(!on("192.0.2.7:3000", false));
        assert!(on("0.0.0.0:3000", true));
    }

    #[test]
    fn local_has_the_defaults_of_the_command_line() {
        let dir = PathBuf::from("/tmp/x");
        let parsed = parse(&["--bind=127.0.0.1:0", "--data-dir=/tmp/x"]).unwrap();
        let local = Config::local(dir);
        assert_eq!(format!("{local:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn webhooks_come_from_repeated_flags_whole() {
        let parsed =
            parse(&["--webhook", "http://127.0.0.1:9/a,b", "--webhook=http://127.0.0.1:9/b", "--webhook-secret=s"])
                .unwrap();
        let urls = parsed.webhooks().unwrap().unwrap().urls;
        assert_eq!(urls[0].as_str(), "http://127.0.0.1:9/a,b", "a flag's URL is not split");
        assert_eq!(urls.len(), 2);
        let error = parse(&["--webhook", "http://127.0.0.1:9/a"]).unwrap().webhooks().unwrap_err();
        assert!(error.contains("--webhook-secret"), "{error}");
        assert!(!format!("{:?}", parse(&["--webhook-secret=hunter2"]).unwrap()).contains("hunter2"));
    }

    #[test]
    fn a_tls_flag_without_the_other_is_refused_naming_the_missing_one() {
        let error = parse(&["--tls-cert", "/etc/manager/cert.pem"]).unwrap_err();
        assert!(error.contains("--tls-key"), "{error}");
        let error = parse(&["--tls-key", "/etc/manager/key.pem"]).unwrap_err();
        assert!(error.contains("--tls-cert"), "{error}");
        let both = parse(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]).unwrap();
        assert_eq!(both.tls_cert.as_deref(), Some(std::path::Path::new("/c.pem")));
        // Built in code, one alone is refused too (not served as plain HTTP).
        let error = Config { tls_cert: Some("/c.pem".into()), ..Config::local("/tmp/x".into()) }.tls().unwrap_err();
        assert_eq!(error.to_string(), "--tls-cert needs --tls-key: give both, or neither to serve plain HTTP");
    }

    #[test]
    fn token_lifetimes_outside_a_minute_to_a_year_are_refused_naming_the_flag() {
        assert_eq!(parse(&[]).unwrap().token_ttl_seconds, 36_000);
        assert_eq!(parse(&["--token-ttl-seconds", "60"]).unwrap().token_ttl_seconds, 60);
        assert_eq!(parse(&["--token-ttl-seconds", "31536000"]).unwrap().token_ttl_seconds, 31_536_000);
        for bad in ["59", "0", "31536001", "9000000000000", "99999999999999999", "-5", "ten"] {
            let error = parse(&[&format!("--token-ttl-seconds={bad}")]).expect_err(bad);
            assert!(error.contains("--token-ttl-seconds"), "{bad}: {error}");
            assert!(error.contains("from 60 (a minute) to 31536000 (a year)"), "{bad}: {error}");
        }
    }
}
