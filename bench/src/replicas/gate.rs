//! The gate's cost on a PostgreSQL replica and on SQLite: the gate-overhead
//! comparison (router with and without the gate) on both stores, all four
//! alternating; then instructions per request under callgrind, which do not
//! depend on the machine's load.

use crate::callgrind::{self, Probe};
use crate::{load, serve_on, Load, StoreKind, Summary, CONNECTIONS, PAIRS, RUN};

/// Requests answered per callgrind run.
const CALLGRIND_REQUESTS: usize = 2000;

pub async fn figures() -> anyhow::Result<()> {
    let path = "/api/v3.1/version";
    let stores = [StoreKind::Sqlite, StoreKind::Postgres];
    let mut served = Vec::new();
    for store in stores {
        for gated in [true, false] {
            served.push(serve_on(store, gated).await?);
        }
    }
    let urls: Vec<String> = served.iter().map(|served| format!("{}{path}", served.base)).collect();
    for url in &urls {
        load(url, None).await?;
    }
    // SQLite gated, ungated, PostgreSQL gated, ungated; again.
    let mut runs: Vec<Vec<Load>> = urls.iter().map(|_| Vec::new()).collect();
    for _ in 0..PAIRS {
        for (url, runs) in urls.iter().zip(&mut runs) {
            runs.push(load(url, None).await?);
        }
    }
    drop(served);

    println!(
        "### Gate overhead on either store: GET {path}, {CONNECTIONS} connections, {PAIRS} rounds of {RUN:?} runs \
         (the four alternating)\n"
    );
    println!("| store | with the gate | without | ratio (with / without) | per round |\n|---|---|---|---|---|");
    for (store, runs) in stores.iter().zip(runs.chunks(2)) {
        let (with, without) = (Summary::of(&runs[0]), Summary::of(&runs[1]));
        let mut ratios: Vec<f64> = runs[0].iter().zip(&runs[1]).map(|(a, b)| a.per_second / b.per_second).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.0}/s, p99 {} | {:.0}/s, p99 {} | **{:.3}** | {:.3} to {:.3} |",
            store.name(),
            with.per_second,
            crate::ms(with.p99),
            without.per_second,
            crate::ms(without.p99),
            with.per_second / without.per_second,
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    println!();
    instructions().await
}

/// Instructions per request, counted by callgrind inside the loop that
/// answers them (the manager's set-up is not counted).
async fn instructions() -> anyhow::Result<()> {
    if !callgrind::valgrind_found() {
        println!("(valgrind is not installed: no instruction counts)\n");
        return Ok(());
    }
    let probes = [
        ("GET /api/v3.1/version, with the gate", Probe::Version { gated: true }),
        ("GET /api/v3.1/version, without the gate", Probe::Version { gated: false }),
        ("GET /api/v3.1/executions + token, activated: the gate's 503", Probe::Refused),
    ];
    let mut rows = Vec::new();
    for (name, probe) in probes {
        let mut counts = Vec::new();
        for store in [StoreKind::Sqlite, StoreKind::Postgres] {
            counts.push(callgrind::instructions_per_request(store, probe, CALLGRIND_REQUESTS).await?);
        }
        rows.push((name, counts));
    }
    println!(
        "### Instructions per request (`valgrind --tool=callgrind`, {CALLGRIND_REQUESTS} requests through the \
         router in one thread, counted only inside the loop that sends them)\n"
    );
    println!("| request | SQLite | PostgreSQL |\n|---|---|---|");
    for (name, counts) in &rows {
        println!("| {name} | {:.0} | {:.0} |", counts[0], counts[1]);
    }
    let gate = |store: usize| rows[0].1[store] - rows[1].1[store];
    println!(
        "\nthe gate's own cost (with − without): SQLite {:.0}, PostgreSQL {:.0} instructions per request\n",
        gate(0),
        gate(1)
    );
    Ok(())
}
