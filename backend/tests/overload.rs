//! A flood of requests is refused, not queued without limit: each database
//! thread takes at most `--queue-capacity` waiting jobs; beyond that the
//! manager answers 503 `overloaded` with `Retry-After`, its memory stays
//! bounded, and every request it acknowledged is kept.

mod common;

use std::collections::HashSet;

use common::{assert_error, ManagerProcess, PATIENCE};
use futures_util::future::join_all;
use shared::api::ListResponse;
use shared::{ErrorCode, Execution};

/// Resident memory of a process, in KiB (from /proc).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a number of KiB")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_refused_as_overloaded_with_bounded_memory_and_nothing_acknowledged_lost() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start_with_env(data.path(), &[("MANAGER_QUEUE_CAPACITY", "4")]).signed_in().await;
    let before = rss_kib(manager.pid());

    let mut admitted = HashSet::new();
    let mut refused = 0;
    for round in 0..5 {
        // 400 creates at once: each needs the auth thread (the token) and then
        // the engine's (a synchronous commit), far more than 4 can wait.
        let answers = join_all((0..400).map(|_| {
            let api = manager.api.clone();
            async move { api.create(0.05, false).await }
        }))
        .await;
        for answer in answers {
            match answer.status().as_u16() {
                201 => {
                    let execution: Execution = answer.json().await.unwrap();
                    admitted.insert(execution.id);
                }
                503 => {
                    assert_eq!(answer.headers()["retry-after"], "1", "round {round}");
                    assert_error(answer, 503, ErrorCode::Overloaded).await;
                    refused += 1;
                }
                other => panic!("round {round}: unexpected {other}: {}", answer.text().await.unwrap_or_default()),
            }
        }
    }
    assert!(refused > 0, "a flood of 400 against queues of 4 was never refused");
    assert!(!admitted.is_empty(), "some creates got through");
    let grown_mib = rss_kib(manager.pid()).saturating_sub(before) / 1024;
    assert!(grown_mib < 48, "RSS grew by {grown_mib} MiB over five floods");

    // Every acknowledged execution is stored (page by page: there may be more than a page).
    let mut stored = HashSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list = manager.api.get(&format!("/executions?_size=1000&_offset={}", stored.len())).await;
        if list.status() == 503 && tokio::time::Instant::now() < deadline {
            // The admitted executions are still ending (on PostgreSQL their ends and
            // output take the pool's connections, and only 4 calls may wait): the
            // read is refused as overloaded, as the flood was; retry after a while.
            assert_error(list, 503, ErrorCode::Overloaded).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(list.status(), 200);
        let list: ListResponse<Execution> = list.json().await.unwrap();
        assert_eq!(list.metadata.pagination.total, admitted.len() as u64);
        if list.items.is_empty() {
            break;
        }
        stored.extend(list.items.iter().map(|execution| execution.id));
    }
    assert!(
        admitted.is_subset(&stored),
        "{} acknowledged executions are missing",
        admitted.difference(&stored).count()
    );
    eprintln!("admitted {}, refused {refused} as overloaded, RSS +{grown_mib} MiB", admitted.len());
}
