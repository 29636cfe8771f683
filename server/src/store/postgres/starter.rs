//! The starter dashboard a new database gets, as the redb store's new file does: made once,
//! by whichever node opens the database first (deleting it is the user's choice).

use deadpool_postgres::Object;
use telemetry::dashboard::Dashboard;

use super::error::PgError;

/// The settings row saying the starter dashboard was made.
const SEEDED: &str = "dashboards_seeded";

/// Makes the starter dashboard in a new database; nodes starting together make it once.
pub(super) async fn seed(client: &mut Object) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    let first = tx
        .execute("INSERT INTO settings (name, value) VALUES ($1, '1') ON CONFLICT DO NOTHING", &[&SEEDED])
        .await?;
    if first == 1 {
        let starter = Dashboard::starter();
        let doc = serde_json::to_value(&starter).expect("dashboards serialise");
        tx.execute(
            "INSERT INTO dashboards (id, updated, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&starter.id, &starter.updated, &doc],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
