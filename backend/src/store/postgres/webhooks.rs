//! Webhook cursors and deliveries on PostgreSQL: SQLite's (`store/webhooks.rs`)
//! plus who delivers. A URL's cursor row is claimed by one replica (`owner`)
//! under `FOR UPDATE SKIP LOCKED` until `claimed_until`; its deliverer renews
//! the claim at every round and while a post is in flight, so the cluster
//! delivers each event once per URL, and when the holder dies (or stops
//! working on the URL) a survivor takes it over once the claim lapses.
//! Moving the cursor checks the owner, so a replica that lost the URL cannot
//! move it.

use std::time::Duration;

use shared::{DeliveryOutcome, Timestamp, WebhookDelivery, WebhookView};
use tokio_postgres::GenericClient;

use super::{Pg, StoreError};
use crate::store::webhooks::{
    delivery_row, raw_cursor, stored_event, view, Claim, Cursor, KEPT_DELIVERIES, SHOWN_DELIVERIES,
};

/// A cursor for URL `$1` after the newest event, unless it has one.
const REGISTER: &str = "INSERT INTO webhooks (url, delivered_seq) \
                        SELECT $1, COALESCE(MAX(seq), 0) FROM maintenance_history ON CONFLICT (url) DO NOTHING";
/// Whether another replica's claim on the row still runs.
const HELD: &str = "claimed_until > clock_timestamp()";

impl Pg {
    /// Adds a cursor after the newest event for each of `urls` that has
    /// none, and lets go of any other URL `replica` held (no longer its to deliver).
    pub async fn webhook_register(&self, urls: &[String], replica: &str) -> Result<(), StoreError> {
        self.with(async |client| {
            for url in urls {
                client.execute(REGISTER, &[url]).await?;
            }
            client
                .execute(
                    "UPDATE webhooks SET owner = NULL, claimed_until = NULL WHERE owner = $1 AND NOT (url = ANY($2))",
                    &[&replica, &urls],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Claims (or renews) `url` for `replica` for `claim`, unless another
    /// replica's claim runs, and reads its cursor and next event.
    pub async fn webhook_claim(&self, url: &str, replica: &str, claim: Duration) -> Result<Claim, StoreError> {
        self.with(async |client| {
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT delivered_seq, attempts, next_attempt_at, owner, \
                         owner IS NOT NULL AND owner <> $2 AND {HELD} AS taken \
                         FROM webhooks WHERE url = $1 FOR UPDATE SKIP LOCKED"
                    ),
                    &[&url, &replica],
                )
                .await?;
            let Some(row) = row else {
                // Another replica is claiming it this instant, or its cursor was lost: made again.
                tx.execute(REGISTER, &[&url]).await?;
                tx.commit().await?;
                return Ok(Claim::Busy);
            };
            let owner: Option<String> = row.try_get(3)?;
            if row.try_get::<_, bool>(4)? {
                return Ok(Claim::Theirs { owner: owner.unwrap_or_default() });
            }
            tx.execute(
                "UPDATE webhooks SET owner = $2, claimed_until = clock_timestamp() + $3 * interval '1 millisecond' \
                 WHERE url = $1",
                &[&url, &replica, &millis(claim)],
            )
            .await?;
            let taken_from = (owner.as_deref() != Some(replica)).then(|| owner.unwrap_or_default());
            let cursor = raw_cursor(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)?;
            let next = tx
                .query_opt(
                    "SELECT seq, event, at, status_after, window_after FROM maintenance_history \
                     WHERE seq > $1 AND status_after IS NOT NULL ORDER BY seq LIMIT 1",
                    &[&i64::try_from(cursor.delivered_seq).unwrap_or(i64::MAX)],
                )
                .await?
                .map(|row| -> Result<_, StoreError> {
                    stored_event(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?)
                })
                .transpose()?;
            tx.commit().await?;
            Ok(Claim::Mine { cursor, next, taken_from })
        })
        .await
    }

    /// Renews `replica`'s running claim on `url` for `claim`; `false` if it no longer holds it.
    pub async fn webhook_renew(&self, url: &str, replica: &str, claim: Duration) -> Result<bool, StoreError> {
        self.with(async |client| {
            let changed = client
                .execute(
                    &format!(
                        "UPDATE webhooks SET claimed_until = clock_timestamp() + $3 * interval '1 millisecond' \
                         WHERE url = $1 AND owner = $2 AND {HELD}"
                    ),
                    &[&url, &replica, &millis(claim)],
                )
                .await?;
            Ok(changed == 1)
        })
        .await
    }

    /// Gives `url` up if `replica` holds it (a graceful stop), so a survivor takes it at once.
    pub async fn webhook_release(&self, url: &str, replica: &str) -> Result<(), StoreError> {
        self.with(async |client| {
            client
                .execute(
                    "UPDATE webhooks SET owner = NULL, claimed_until = NULL WHERE url = $1 AND owner = $2",
                    &[&url, &replica],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt at event `seq`, if `replica` still holds `url`.
    pub async fn webhook_attempt_failed(
        &self,
        url: &str,
        replica: &str,
        seq: u64,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.with(async |client| {
            let changed = client
                .execute(
                    "UPDATE webhooks SET attempts = $4, next_attempt_at = $5, last_error = $6 \
                     WHERE url = $1 AND owner = $2 AND delivered_seq < $3",
                    &[
                        &url,
                        &replica,
                        &i64::try_from(seq).unwrap_or(i64::MAX),
                        &i64::from(attempts),
                        &next_attempt_at.to_string(),
                        &error,
                    ],
                )
                .await?;
            Ok(changed == 1)
        })
        .await
    }

    /// Records an event delivered or given up and moves the cursor past it,
    /// if `replica` still holds `url`; `false` otherwise.
    pub async fn webhook_finish(
        &self,
        url: &str,
        replica: &str,
        delivery: &WebhookDelivery,
    ) -> Result<bool, StoreError> {
        self.with(async |client| {
            let tx = client.transaction().await?;
            let delivered = delivery.outcome == DeliveryOutcome::Delivered;
            let seq = i64::try_from(delivery.event_id).unwrap_or(i64::MAX);
            let changed = tx
                .execute(
                    "UPDATE webhooks SET delivered_seq = $3, attempts = 0, next_attempt_at = NULL, last_error = $4, \
                     delivered = delivered + $5, failed = failed + $6 \
                     WHERE url = $1 AND owner = $2 AND delivered_seq < $3",
                    &[&url, &replica, &seq, &delivery.error, &i64::from(delivered), &i64::from(!delivered)],
                )
                .await?;
            if changed == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO webhook_deliveries (url, event_seq, event, outcome, at, attempts, status_code, error, \
                 latency_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &url,
                    &seq,
                    &delivery.event.as_str(),
                    &delivery.outcome.as_str(),
                    &delivery.at.to_string(),
                    &i64::from(delivery.attempts),
                    &delivery.status_code.map(i64::from),
                    &delivery.error,
                    &i64::try_from(delivery.latency_ms).unwrap_or(i64::MAX),
                ],
            )
            .await?;
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE url = $1 AND seq <= \
                 (SELECT seq FROM webhook_deliveries WHERE url = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                &[&url, &i64::try_from(KEPT_DELIVERIES).unwrap_or(i64::MAX)],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// What `GET /maintenance/webhooks` shows of `urls` (stored as the first of each pair), and the newest event's id.
    pub async fn webhook_report(&self, urls: &[(String, String)]) -> Result<(u64, Vec<WebhookView>), StoreError> {
        self.with(async |client| {
            let tx = super::snapshot(client).await?;
            let last: i64 =
                tx.query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM maintenance_history", &[]).await?.try_get(0)?;
            let mut views = Vec::new();
            for (key, shown) in urls {
                let row = tx
                    .query_opt(
                        &format!(
                            "SELECT delivered_seq, attempts, next_attempt_at, last_error, delivered, failed, \
                             CASE WHEN {HELD} THEN owner ELSE '' END FROM webhooks WHERE url = $1"
                        ),
                        &[key],
                    )
                    .await?;
                let Some(row) = row else {
                    views.push(view(
                        shown.clone(),
                        Cursor::default(),
                        0,
                        String::new(),
                        0,
                        0,
                        String::new(),
                        Vec::new(),
                    ));
                    continue;
                };
                let cursor: Cursor = raw_cursor(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)?;
                let backlog: i64 = backlog(&tx, cursor.delivered_seq).await?;
                let recent = tx
                    .query(
                        "SELECT event_seq, event, outcome, at, attempts, status_code, error, latency_ms \
                         FROM webhook_deliveries WHERE url = $1 ORDER BY seq DESC LIMIT $2",
                        &[key, &i64::from(SHOWN_DELIVERIES)],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        delivery_row(
                            row.try_get(0)?,
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                            row.try_get(4)?,
                            row.try_get(5)?,
                            row.try_get(6)?,
                            row.try_get(7)?,
                        )
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                views.push(view(
                    shown.clone(),
                    cursor,
                    backlog,
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
                    recent,
                ));
            }
            tx.commit().await?;
            Ok((u64::try_from(last).unwrap_or_default(), views))
        })
        .await
    }
}

async fn backlog(client: &impl GenericClient, after: u64) -> Result<i64, StoreError> {
    Ok(client
        .query_one(
            "SELECT COUNT(*) FROM maintenance_history WHERE seq > $1 AND status_after IS NOT NULL",
            &[&i64::try_from(after).unwrap_or(i64::MAX)],
        )
        .await?
        .try_get(0)?)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
