//! `manager`: reads the configuration, opens the data dir and serves until
//! SIGINT or SIGTERM (SIGHUP re-reads the TLS certificate and key);
//! `manager users …` manages users on the data dir.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use manager::config::{Config, LogFormat};
use manager::users::{self, UsersCommand};
use manager::Manager;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// The workflow manager server.
#[derive(Debug, Parser)]
#[command(name = "manager", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manages users (on the data dir or the `--database`, also while the server runs).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let Cli { mut config, command } = Cli::parse();
    if let Some(Command::Users { command }) = command {
        let done = users::run(&config, command, &mut std::io::stdin().lock())?;
        println!("{done}");
        return Ok(());
    }
    let log_format = config.log_format;
    init_logging(log_format);
    config.admin_password = std::env::var("MANAGER_ADMIN_PASSWORD").ok();
    match manager::server::raise_open_file_limit() {
        Ok(files) => tracing::debug!(files, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    let served = tokio::runtime::Runtime::new()?.block_on(serve(config));
    match served {
        // A collector reads JSON lines only: the reason it stopped is one too.
        Err(error) if log_format == LogFormat::Json => {
            tracing::error!(error = format!("{error:#}"), "the manager cannot run");
            std::process::exit(1);
        }
        served => served,
    }
}

/// Log lines on stderr, `info` and up unless `RUST_LOG` says otherwise, as
/// text or as JSON objects (`--log-format`). A JSON line has `timestamp`,
/// `level`, `fields` (`message` among them), `target` and, inside a request,
/// `spans` with the request's `request_id`.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| QuietStderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(true).init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Refused before anything opens, in the flag's own words.
    config.webhooks().map_err(anyhow::Error::msg)?;
    config.tls()?;
    let manager = Manager::open(&config).await.with_context(|| match &config.database {
        None => format!("opening data dir {}", config.data_dir.display()),
        Some(_) => "opening the PostgreSQL database of --database".to_owned(),
    })?;
    let listener = TcpListener::bind(&config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let address = listener.local_addr()?;
    // Caught before the manager says it listens: a stop sent the moment it
    // does is graceful, and a reload never kills it. (Until here a signal
    // still ends a start that hangs, e.g. on an unreachable database.)
    #[cfg(unix)]
    let (stops, hangups) = {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt()).context("catching SIGINT")?;
        let terminate = signal(SignalKind::terminate()).context("catching SIGTERM")?;
        ((interrupt, terminate), signal(SignalKind::hangup()).context("catching SIGHUP")?)
    };
    let tls = manager.tls();
    if let Some(tls) = &tls {
        tracing::info!(cert = %tls.files().cert.display(), sha256 = %tls.fingerprint(), "TLS certificate");
    } else if manager::tls::plain_http_exposed(address) {
        tracing::warn!(
            "serving plain HTTP on {address}, which is not loopback: passwords and tokens cross the network \
             readable by anyone on the way; give --tls-cert and --tls-key to serve HTTPS"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(data_dir = %config.data_dir.display(), "listening on {scheme}://{address}");
    manager::systemd::ready(address);
    manager::systemd::spawn_watchdog();

    let shutdown = CancellationToken::new();
    #[cfg(unix)]
    tokio::spawn(stop_on_signal(stops, shutdown.clone()));
    #[cfg(not(unix))]
    tokio::spawn(stop_on_signal(shutdown.clone()));
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(hangups, tls, shutdown.clone()));
    manager.serve(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Stops the manager on SIGINT or SIGTERM (caught since start-up).
#[cfg(unix)]
async fn stop_on_signal(
    (mut interrupt, mut terminate): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    // Stop first: logging can fail (a closed stderr) and must not keep the manager running.
    shutdown.cancel();
    manager::systemd::stopping();
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Stops the manager on Ctrl-C.
#[cfg(not(unix))]
async fn stop_on_signal(shutdown: CancellationToken) {
    let _ = tokio::signal::ctrl_c().await;
    // Stop first: logging can fail (a closed stderr) and must not keep the manager running.
    shutdown.cancel();
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Re-reads the TLS certificate and key on each SIGHUP, one reload at a time
/// (signals that arrive during one make one more), until the manager stops;
/// a pair that cannot serve leaves the one in force and says why.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    tls: Option<Arc<manager::tls::Certificates>>,
    shutdown: CancellationToken,
) {
    loop {
        // Once caught, SIGHUP stays caught (tokio never restores the default
        // action): one arriving during or after the stop does nothing.
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
            continue;
        };
        let reloading = Arc::clone(tls);
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(())) => tracing::info!(
                cert = %tls.files().cert.display(),
                sha256 = %tls.fingerprint(),
                "SIGHUP: TLS certificate and key reloaded; new connections get them"
            ),
            Ok(Err(error)) => tracing::error!(
                sha256 = %tls.fingerprint(),
                "SIGHUP: {error}; still serving the previous certificate"
            ),
            Err(error) => tracing::error!(%error, "SIGHUP: the reload failed; still serving the previous certificate"),
        }
    }
}

/// Standard error for the logs, ignoring write errors: a log line that cannot
/// be written (its reader is gone) must never stop the manager.
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
