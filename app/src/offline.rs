//! The offline cache: the device registry with every device's latest values and the
//! high-water mark, kept in IndexedDB so the installed app opens with last-known readings
//! when there is no network. Written in batches as live changes arrive.

use serde::{Deserialize, Serialize};
use telemetry::{DeviceSummary, Millis};

/// What the cache holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    /// The highest change sequence number included.
    pub hwm: u64,
    /// When it was written (browser clock).
    pub saved_at: Millis,
    pub devices: Vec<DeviceSummary>,
}

#[cfg(feature = "hydrate")]
pub use imp::{load, save_soon};

#[cfg(feature = "hydrate")]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
    use leptos::prelude::*;
    use wasm_bindgen::JsValue;

    use super::Cache;
    use crate::live::Live;

    const DB_NAME: &str = "iot-dashboard";
    const DB_VERSION: u32 = 1;
    const STORE: &str = "state";
    const KEY: &str = "cache";
    /// Live changes are written at most this often.
    const SAVE_DELAY: Duration = Duration::from_millis(500);

    thread_local! {
        static DB: RefCell<Option<Rc<Database>>> = const { RefCell::new(None) };
        static SAVE_PENDING: Cell<bool> = const { Cell::new(false) };
    }

    async fn open() -> Result<Rc<Database>, String> {
        if let Some(db) = DB.with(|d| d.borrow().clone()) {
            return Ok(db);
        }
        let factory = Factory::new().map_err(|e| e.to_string())?;
        let mut request = factory.open(DB_NAME, Some(DB_VERSION)).map_err(|e| e.to_string())?;
        request.on_upgrade_needed(|event| {
            if let Ok(db) = event.database()
                && !db.store_names().iter().any(|s| s == STORE)
            {
                let _ = db.create_object_store(STORE, ObjectStoreParams::new());
            }
        });
        let db = Rc::new(request.await.map_err(|e| e.to_string())?);
        DB.with(|d| *d.borrow_mut() = Some(db.clone()));
        Ok(db)
    }

    fn unavailable(live: Option<Live>, why: String) {
        leptos::logging::warn!("offline cache unavailable: {why}");
        if let Some(live) = live {
            live.cache_problem.set(Some(why));
        }
    }

    /// What the cache remembered, if anything; notes on `live` why offline mode is off when
    /// the browser refuses storage (private mode, quota).
    pub async fn load(live: Live) -> Option<Cache> {
        let db = match open().await {
            Ok(db) => db,
            Err(e) => {
                unavailable(Some(live), e);
                return None;
            }
        };
        let tx = db.transaction(&[STORE], TransactionMode::ReadOnly).ok()?;
        let value = tx.object_store(STORE).ok()?.get(JsValue::from_str(KEY)).ok()?.await.ok()??;
        serde_json::from_str(&value.as_string()?).ok()
    }

    async fn save(cache: Cache) -> Result<(), String> {
        let db = open().await?;
        let json = serde_json::to_string(&cache).map_err(|e| e.to_string())?;
        let tx = db.transaction(&[STORE], TransactionMode::ReadWrite).map_err(|e| e.to_string())?;
        let store = tx.object_store(STORE).map_err(|e| e.to_string())?;
        store
            .put(&JsValue::from_str(&json), Some(&JsValue::from_str(KEY)))
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Writes the current state soon, once for any number of calls in the meantime.
    pub fn save_soon(live: Live) {
        if SAVE_PENDING.with(|p| p.replace(true)) {
            return;
        }
        set_timeout(
            move || {
                SAVE_PENDING.with(|p| p.set(false));
                let cache = Cache {
                    hwm: live.hwm.get_value(),
                    saved_at: chrono::Utc::now().timestamp_millis(),
                    devices: live.snapshot().into_values().collect(),
                };
                leptos::task::spawn_local(async move {
                    if let Err(e) = save(cache).await {
                        unavailable(Some(live), e);
                    }
                });
            },
            SAVE_DELAY,
        );
    }
}
