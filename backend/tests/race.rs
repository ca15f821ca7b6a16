//! SPEC §1 "Race-free": no execution is admitted after the activation request
//! was acknowledged. Many creates race one activate, for many rounds.

mod common;

use std::collections::HashSet;

use common::{TestApp, LONG};
use futures_util::future::join_all;
use shared::{ErrorCode, MaintenanceState};
use uuid::Uuid;

const ROUNDS: usize = 20;
const CREATES_PER_ROUND: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_execution_is_admitted_after_the_activate_response() {
    let app = TestApp::spawn().await;
    let mut admitted_total = 0;
    let mut refused_total = 0;
    for round in 0..ROUNDS {
        let creates: Vec<_> = (0..CREATES_PER_ROUND)
            .map(|_| {
                let api = app.api.clone();
                tokio::spawn(async move {
                    let response = api.create(LONG, false).await;
                    match response.status().as_u16() {
                        201 => Ok(response.json::<shared::Execution>().await.unwrap().id),
                        503 => Err(response.json::<shared::ApiError>().await.unwrap().error_code),
                        other => panic!("unexpected status {other}"),
                    }
                })
            })
            .collect();
        // Fire the activate while the creates are in flight.
        tokio::task::yield_now().await;
        let activated = app.api.activate(None).await;
        let remaining: HashSet<Uuid> = activated.remaining_executions.iter().map(|e| e.id).collect();
        // No execution ends by itself (each runs for LONG), so the state stays what the activate acknowledged,
        // and every refusal carries that state's code.
        let refusal = match activated.status {
            MaintenanceState::Activating => ErrorCode::EnteringMaintenanceMode,
            _ => ErrorCode::MaintenanceModeActive,
        };

        let mut admitted = Vec::new();
        for outcome in join_all(creates).await {
            match outcome.unwrap() {
                Ok(id) => admitted.push(id),
                Err(code) => {
                    assert_eq!(code, refusal, "round {round}");
                    refused_total += 1;
                }
            }
        }
        // Every admitted execution was admitted before the activation (none ends on its own).
        for id in &admitted {
            assert!(
                remaining.contains(id),
                "round {round}: {id} got 201 but is not a remaining execution of the activation"
            );
        }
        assert_eq!(remaining.len(), admitted.len(), "round {round}: remaining holds exactly the admitted");
        let now = app.api.status().await;
        let expected = if remaining.is_empty() { MaintenanceState::Activated } else { MaintenanceState::Activating };
        assert_eq!(now.status, expected);
        admitted_total += admitted.len();
        // Each admitted execution is a running program: end them before the
        // next round, so at most one round's worth runs at a time.
        join_all(admitted.iter().map(|id| app.api.force_cancel(*id))).await;
        app.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
        app.api.deactivate().await;
    }
    // The race really happened in both directions over the rounds.
    println!("admitted {admitted_total}, refused {refused_total} over {ROUNDS} rounds");
    assert!(refused_total > 0, "no create was ever refused: the test raced nothing");
}
