//! HTTPS against plain HTTP (SPEC §13): two managers behind the production
//! accept loop, one with `--tls-cert` (an ECDSA P-256 certificate made here),
//! loaded alternately in one process so that machine noise falls on all
//! sides. Keep-alive connections show what encryption costs per request; a
//! connection per request shows what a handshake costs. The load generator
//! shares the cores with the manager, so its own TLS work is in the figures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

use crate::{
    load_with, ms, serve, serve_over, windows::load_average, Load, StoreKind, Summary, CONNECTIONS, PAIRS, RUN,
};

/// Workers opening a connection per request (each a TCP connect and, over
/// HTTPS, a full handshake).
const FRESH_WORKERS: usize = 16;
/// At most this many fresh connections per run: loopback ports in TIME_WAIT
/// must not run out.
const FRESH_LIMIT: usize = 4000;
/// Alternating runs of the connection-per-request comparison.
const FRESH_PAIRS: usize = 3;

pub(crate) async fn figures() -> anyhow::Result<()> {
    let load_before = load_average();
    let dir = tempfile::tempdir()?;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let files = manager::tls::TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
    std::fs::write(&files.cert, made.cert.pem())?;
    std::fs::write(&files.key, made.signing_key.serialize_pem())?;
    let plain = serve(true).await?;
    let https = serve_over(StoreKind::Sqlite, true, Some(files)).await?;
    let root = reqwest::Certificate::from_pem(made.cert.pem().as_bytes())?;
    let trusting = || {
        reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).add_root_certificate(root.clone())
    };

    let path = "/api/v3.1/version";
    let plain_url = format!("{}{path}", plain.base);
    let https_url = format!("{}{path}", https.base);
    let plain_client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build()?;
    let http1 = trusting().http1_only().pool_max_idle_per_host(CONNECTIONS).build()?;
    let http2 = trusting().build()?;
    let version = http2.get(&https_url).send().await?.version();
    ensure!(version == reqwest::Version::HTTP_2, "ALPN chose {version:?}, not HTTP/2");

    // Keep-alive: plain HTTP/1.1, HTTPS HTTP/1.1, HTTPS HTTP/2, warmed, then alternated.
    let sides = [(&plain_client, &plain_url), (&http1, &https_url), (&http2, &https_url)];
    for (client, url) in sides {
        load_with(client, url, None).await?;
    }
    let mut runs: [Vec<Load>; 3] = Default::default();
    for _ in 0..PAIRS {
        for ((client, url), runs) in sides.iter().zip(runs.iter_mut()) {
            runs.push(load_with(client, url, None).await?);
        }
    }
    let mut ratios: Vec<f64> =
        runs[1].iter().zip(&runs[0]).map(|(tls, plain)| tls.per_second / plain.per_second).collect();
    ratios.sort_by(f64::total_cmp);
    let [plain_runs, http1_runs, http2_runs] = runs;
    let kept = [Summary::of(&plain_runs), Summary::of(&http1_runs), Summary::of(&http2_runs)];

    // A connection per request.
    let plain_fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let https_fresh = trusting().http1_only().pool_max_idle_per_host(0).build()?;
    fresh_connections(&plain_fresh, &plain_url).await?;
    fresh_connections(&https_fresh, &https_url).await?;
    let (mut plain_new, mut https_new) = (Vec::new(), Vec::new());
    for _ in 0..FRESH_PAIRS {
        plain_new.push(fresh_connections(&plain_fresh, &plain_url).await?);
        https_new.push(fresh_connections(&https_fresh, &https_url).await?);
    }
    let fresh = [Summary::of(&plain_new), Summary::of(&https_new)];

    println!(
        "## HTTPS against plain HTTP: GET {path}, {PAIRS} alternating rounds of {RUN:?} runs \
         (load average before: {load_before}; after: {})\n",
        load_average()
    );
    println!(
        "| transport | connections | requests/s | p50 | p99 |\n|---|---|---|---|---|\n\
         | plain HTTP/1.1 | {CONNECTIONS} kept alive | {} |\n\
         | HTTPS, HTTP/1.1 (TLS 1.3, ECDSA P-256) | {CONNECTIONS} kept alive | {} |\n\
         | HTTPS, HTTP/2 by ALPN | one, {CONNECTIONS} streams | {} |\n\
         | plain HTTP/1.1 | a new one per request, {FRESH_WORKERS} at once | {} |\n\
         | HTTPS, HTTP/1.1 | a new one per request (full handshake), {FRESH_WORKERS} at once | {} |",
        row(&kept[0]),
        row(&kept[1]),
        row(&kept[2]),
        row(&fresh[0]),
        row(&fresh[1]),
    );
    println!(
        "\nratio (HTTPS / plain, kept alive, HTTP/1.1): **{:.2}** overall; per round {:.2} to {:.2}. \
         A connection per request: {:.2} (handshakes, {FRESH_PAIRS} rounds of at most {FRESH_LIMIT} \
         requests or {RUN:?}).\n",
        kept[1].per_second / kept[0].per_second,
        ratios[0],
        ratios[ratios.len() - 1],
        fresh[1].per_second / fresh[0].per_second,
    );
    Ok(())
}

fn row(summary: &Summary) -> String {
    format!("{:.0} | {} | {}", summary.per_second, ms(summary.p50), ms(summary.p99))
}

/// [`FRESH_WORKERS`] workers, each request on a connection of its own, for
/// [`RUN`] or [`FRESH_LIMIT`] requests, whichever comes first.
async fn fresh_connections(client: &reqwest::Client, url: &str) -> anyhow::Result<Load> {
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let workers = (0..FRESH_WORKERS).map(|_| {
        let (client, url, sent) = (client.clone(), url.to_owned(), Arc::clone(&sent));
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < FRESH_LIMIT {
                let at = Instant::now();
                let response = client.get(&url).send().await?;
                if !response.status().is_success() {
                    bail!("{url}: {}", response.status());
                }
                response.bytes().await?;
                latencies.push(at.elapsed());
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed();
    ensure!(!latencies.is_empty(), "no request answered");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Load { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99) })
}
