//! The offline cache: the device registry with every device's latest values and the
//! high-water mark, the last-known alarms, plus the last 24 h of every chart shown, kept in
//! IndexedDB so the installed app opens with last-known readings and alarms when there is no
//! network. Written in batches as live changes arrive; charts beyond [`MAX_CHARTS`] (least
//! recently shown first) and buckets older than 24 h are pruned.

use serde::{Deserialize, Serialize};
use telemetry::alarm::Alarm;
use telemetry::{DeviceSummary, History, Millis};

/// Charts kept offline at most.
pub const MAX_CHARTS: usize = 30;
/// How far back a kept chart reaches.
pub const KEEP_MS: Millis = 24 * 3600 * 1000;

/// The part of a chart worth keeping: buckets of the last [`KEEP_MS`] before `now`.
pub fn prune(mut history: History, now: Millis) -> History {
    let horizon = now - KEEP_MS;
    history.buckets.retain(|b| b.t + history.bucket_ms > horizon);
    history
}

/// The key a chart is kept under.
pub fn chart_key(device: &str, metric: &str, span_secs: i64) -> String {
    format!("{device}/{metric}/{span_secs}")
}

/// What the cache holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    /// The highest change sequence number included.
    pub hwm: u64,
    pub devices: Vec<DeviceSummary>,
    /// The alarms `Live::alarms` held (active ones, and the latest cleared) ...
    #[serde(default)]
    pub alarms: Vec<Alarm>,
    /// ... listing every active, unacknowledged one as of this change (0: not every one).
    #[serde(default)]
    pub alarms_as_of: u64,
}

#[cfg(feature = "hydrate")]
pub use imp::{cache_dashboard, cached_dashboard, keep_saved, load, load_chart, save_chart_soon};

#[cfg(feature = "hydrate")]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
    use leptos::prelude::*;
    use wasm_bindgen::JsValue;

    use super::{Cache, MAX_CHARTS, prune};
    use crate::state::live::Live;
    use telemetry::History;

    const DB_NAME: &str = "iot-dashboard";
    const DB_VERSION: u32 = 2;
    const STORE: &str = "state";
    const CHARTS: &str = "charts";
    const KEY: &str = "cache";
    /// In `STORE`: chart keys, least recently saved first.
    const CHART_INDEX: &str = "chart_index";
    /// Live changes are written at most this often.
    const SAVE_DELAY: Duration = Duration::from_millis(500);

    thread_local! {
        static DB: RefCell<Option<Rc<Database>>> = const { RefCell::new(None) };
        static SAVE_PENDING: Cell<bool> = const { Cell::new(false) };
        static CHARTS_PENDING: RefCell<Vec<(String, History)>> = const { RefCell::new(Vec::new()) };
    }

    async fn open() -> Result<Rc<Database>, String> {
        if let Some(db) = DB.with(|d| d.borrow().clone()) {
            return Ok(db);
        }
        let factory = Factory::new().map_err(|e| e.to_string())?;
        let mut request = factory.open(DB_NAME, Some(DB_VERSION)).map_err(|e| e.to_string())?;
        request.on_upgrade_needed(|event| {
            if let Ok(db) = event.database() {
                for name in [STORE, CHARTS] {
                    if !db.store_names().iter().any(|s| s == name) {
                        let _ = db.create_object_store(name, ObjectStoreParams::new());
                    }
                }
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

    /// Saves `live` soon after every batch of changes it applies (the cache observes the
    /// state; the state does not know about the cache).
    pub fn keep_saved(live: Live) {
        Effect::watch(move || live.batch.track(), move |_, _, _| save_soon(live), false);
    }

    /// Writes the current state soon, once for any number of calls in the meantime.
    fn save_soon(live: Live) {
        if SAVE_PENDING.with(|p| p.replace(true)) {
            return;
        }
        set_timeout(
            move || {
                SAVE_PENDING.with(|p| p.set(false));
                let cache = Cache {
                    hwm: live.hwm.get_value(),
                    devices: live.snapshot().into_values().collect(),
                    alarms: live.alarms.with_untracked(|a| a.values().cloned().collect()),
                    alarms_as_of: live.alarms_as_of.get_value(),
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

    /// The last copy of a dashboard this browser saw, so its layout shows at once (and offline).
    pub fn cached_dashboard(id: &str) -> Option<telemetry::dashboard::Dashboard> {
        use gloo_storage::Storage;
        gloo_storage::LocalStorage::get(format!("dashboard:{id}")).ok()
    }

    pub fn cache_dashboard(dashboard: &telemetry::dashboard::Dashboard) {
        use gloo_storage::Storage;
        let _ = gloo_storage::LocalStorage::set(format!("dashboard:{}", dashboard.id), dashboard);
    }

    /// A chart kept offline, if any.
    pub async fn load_chart(key: &str) -> Option<History> {
        let db = open().await.ok()?;
        let tx = db.transaction(&[CHARTS], TransactionMode::ReadOnly).ok()?;
        let value = tx.object_store(CHARTS).ok()?.get(JsValue::from_str(key)).ok()?.await.ok()??;
        serde_json::from_str(&value.as_string()?).ok()
    }

    async fn save_charts(charts: Vec<(String, History)>) -> Result<(), String> {
        let db = open().await?;
        let err = |e: idb::Error| e.to_string();
        let tx = db.transaction(&[STORE, CHARTS], TransactionMode::ReadWrite).map_err(err)?;
        let state = tx.object_store(STORE).map_err(err)?;
        let store = tx.object_store(CHARTS).map_err(err)?;
        let mut index: Vec<String> = state
            .get(JsValue::from_str(CHART_INDEX))
            .map_err(err)?
            .await
            .map_err(err)?
            .and_then(|v| v.as_string())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        for (key, history) in charts {
            let json = serde_json::to_string(&prune(history, now)).map_err(|e| e.to_string())?;
            store
                .put(&JsValue::from_str(&json), Some(&JsValue::from_str(&key)))
                .map_err(err)?
                .await
                .map_err(err)?;
            index.retain(|k| k != &key);
            index.push(key);
        }
        while index.len() > MAX_CHARTS {
            let old = index.remove(0);
            store.delete(JsValue::from_str(&old)).map_err(err)?.await.map_err(err)?;
        }
        let index = serde_json::to_string(&index).map_err(|e| e.to_string())?;
        state
            .put(&JsValue::from_str(&index), Some(&JsValue::from_str(CHART_INDEX)))
            .map_err(err)?
            .await
            .map_err(err)?;
        tx.commit().map_err(err)?.await.map_err(err)?;
        Ok(())
    }

    /// Keeps a chart soon (the latest version of each, once per burst of calls).
    pub fn save_chart_soon(live: Live, key: String, history: History) {
        let first = CHARTS_PENDING.with(|p| {
            let mut p = p.borrow_mut();
            p.retain(|(k, _)| k != &key);
            p.push((key, history));
            p.len() == 1
        });
        if !first {
            return;
        }
        set_timeout(
            move || {
                let charts = CHARTS_PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
                leptos::task::spawn_local(async move {
                    if let Err(e) = save_charts(charts).await {
                        unavailable(Some(live), e);
                    }
                });
            },
            SAVE_DELAY,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Bucket;

    #[test]
    fn kept_charts_reach_back_24_hours_only() {
        let hour = 3_600_000;
        let now = 100 * hour;
        let bucket = |t| Bucket { t, min: 1.0, max: 1.0, avg: 1.0, count: 1, last: 1.0 };
        let h = History {
            device: "d".into(),
            metric: "m".into(),
            from: now - 7 * 24 * hour,
            to: now,
            bucket_ms: hour,
            buckets: (0..=7 * 24).map(|i| bucket(now - i * hour)).rev().collect(),
            last_seq: 0,
            edges: Vec::new(),
            zone: None,
        };
        let kept = prune(h, now);
        assert_eq!(kept.buckets.len(), 24 + 1);
        assert!(kept.buckets.iter().all(|b| b.t > now - KEEP_MS - hour));
        assert_eq!(chart_key("a", "t", 3600), "a/t/3600");
    }

    #[test]
    fn a_cache_written_before_alarms_were_kept_still_reads() {
        let cache: Cache = serde_json::from_str(r#"{"hwm": 7, "devices": []}"#).unwrap();
        assert_eq!((cache.hwm, cache.alarms.len(), cache.alarms_as_of), (7, 0, 0));
    }
}
