//! Server functions for the fleet: devices' tags (one device's, or many at once), groups
//! (saved queries) and the fleet view (one page of devices matching a query, in order).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use telemetry::fleet::Summary;
use telemetry::query::Group;
use telemetry::tags::Tagged;
use telemetry::{DeviceSummary, Millis};

use super::codec::JsonText;
use super::error::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;

/// Most devices one bulk edit may name by id (a page's worth, and then some); "every device
/// the query matches" names them by query instead.
pub const MAX_BULK_IDS: usize = 1000;

/// One device on the fleet view: as the server knows it, and how many of its alarms are open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    pub device: DeviceSummary,
    pub alarms: u32,
    /// Its share of the last 24 h connected, from its connection log (none without one).
    #[serde(default)]
    pub availability: Option<f64>,
}

/// One page of the fleet view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetList {
    /// The server's clock (ages render the same on server and client) and the change number
    /// the rows are current to.
    pub server_time: Millis,
    pub last_seq: u64,
    /// This page's devices, in order.
    pub rows: Vec<FleetRow>,
    /// Devices the query matches, and in all.
    pub matching: usize,
    pub fleet: usize,
    /// This page (from 1; past the last, the last) and how many there are.
    pub page: usize,
    pub pages: usize,
    /// What the chips say of the matching devices.
    pub summary: Summary,
    pub groups: Vec<Group>,
}

/// The devices the fleet query `q` matches (every device without one), sorted by `sort`
/// (`status`, `-seen`, …), page `page` of [`crate::logic::fleet::PAGE_ROWS`] rows, with
/// what the chips count and the groups. A query's mistake is a 400 saying where.
#[server(prefix = "/api", endpoint = "fleet", input = GetUrl, output = JsonText)]
pub async fn list_fleet(
    #[server(default)] q: Option<String>,
    #[server(default)] sort: Option<String>,
    #[server(default)] page: Option<u32>,
) -> Result<FleetList, ApiError> {
    ssr_fleet::page(q.unwrap_or_default(), sort.unwrap_or_default(), page.unwrap_or(1)).await
}

/// Sets a device's tags to those in `tags` (`site=greenhouse floor=2`; empty: none). A plain
/// form can post here.
#[server(prefix = "/api", endpoint = "device/tags", output = JsonText)]
pub async fn set_device_tags(id: String, tags: String) -> Result<(), ApiError> {
    use telemetry::tags::{TagEdit, parse_tags};
    let tags = parse_tags(&tags).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tagged = ssr::tags(move |t| t.edit_tags(&[id], &TagEdit::Replace(tags))).await?;
    if tagged.matched == 0 {
        return Err(ApiError::NotFound("no such device".into()));
    }
    Ok(())
}

/// Adds tags (`add`: `site=greenhouse`, setting the key's value) and removes others
/// (`remove`: `floor` or `floor=2`) on the devices ticked (`ids`), or on every device the
/// query `q` matches when `all` is set: all of it, or nothing if a device would then hold too
/// many tags (409). A plain form can post here; it goes back to the fleet view.
#[server(prefix = "/api", endpoint = "fleet/tags", output = JsonText)]
pub async fn edit_fleet_tags(
    #[server(default)] ids: Option<Vec<String>>,
    #[server(default)] all: Option<String>,
    #[server(default)] q: Option<String>,
    #[server(default)] add: String,
    #[server(default)] remove: String,
    #[server(default)] back: Option<String>,
) -> Result<Tagged, ApiError> {
    use telemetry::tags::{TagEdit, parse_removals, parse_tags};
    let add = parse_tags(&add).map_err(|e| ApiError::BadRequest(format!("add: {e}")))?;
    let remove = parse_removals(&remove).map_err(|e| ApiError::BadRequest(format!("remove: {e}")))?;
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::BadRequest("give tags to add or remove".into()));
    }
    let devices = if all.is_some() {
        let q = q.unwrap_or_default();
        let (query, devices) = ssr_fleet::query_and_devices(&q).await?;
        let now = ssr::now();
        devices.into_iter().filter(|d| query.matches(d, now)).map(|d| d.id).collect()
    } else {
        let ids = ids.unwrap_or_default();
        if ids.len() > MAX_BULK_IDS {
            return Err(ApiError::BadRequest(format!("at most {MAX_BULK_IDS} devices at once")));
        }
        ids
    };
    if devices.is_empty() {
        return Err(ApiError::BadRequest("tick the devices to change first".into()));
    }
    let tagged = ssr::tags(move |t| t.edit_tags(&devices, &TagEdit::Change { add, remove })).await?;
    if ssr::plain_form_post() {
        leptos_axum::redirect(&ssr_fleet::back_to_fleet(back.as_deref()));
    }
    Ok(tagged)
}

/// Every group, by name.
#[server(prefix = "/api", endpoint = "groups", input = GetUrl, output = JsonText)]
pub async fn list_groups() -> Result<Vec<Group>, ApiError> {
    ssr::groups(|f| f.groups().map_err(telemetry::fleet::GroupError::Storage)).await
}

/// Saves the query `query` as a group named `name`: a new one (its id made from the name) or,
/// with `id`, that group changed. A plain form can post here; it goes to the group's devices.
#[server(prefix = "/api", endpoint = "group/save", output = JsonText)]
pub async fn save_group(
    #[server(default)] id: Option<String>,
    name: String,
    query: String,
) -> Result<Group, ApiError> {
    use telemetry::query::group_id;
    let create = id.as_deref().is_none_or(|id| id.trim().is_empty());
    let id = if create { group_id(&name) } else { id.unwrap_or_default().trim().to_owned() };
    let group = Group { id, name, query, updated: 0 };
    let saved = ssr::groups(move |f| f.save_group(group, create)).await?;
    if ssr::plain_form_post() {
        leptos_axum::redirect(&crate::logic::fleet::fleet_href(&format!("group:{}", saved.id)));
    }
    Ok(saved)
}

/// Deletes a group, if `confirm` is "yes" and no alarm rule's scope names it.
#[server(prefix = "/api", endpoint = "group/delete", output = JsonText)]
pub async fn delete_group(id: String, confirm: Option<String>) -> Result<(), ApiError> {
    if confirm.as_deref() != Some("yes") {
        return Err(ApiError::BadRequest("tick the box to confirm the deletion".into()));
    }
    ssr::groups(move |f| f.delete_group(&id)).await?;
    if ssr::plain_form_post() {
        leptos_axum::redirect("/fleet");
    }
    Ok(())
}

/// Server-only helpers of the fleet's functions.
#[cfg(feature = "ssr")]
mod ssr_fleet {
    use telemetry::DeviceSummary;
    use telemetry::fleet::{GroupError, Sort, SortKey, sort_devices, sort_devices_by, summarize};
    use telemetry::query::Query;

    use super::{ApiError, FleetList, FleetRow, ssr};
    use crate::logic::fleet::{PAGE_ROWS, pages};

    /// One page of the fleet view (see [`super::list_fleet`]).
    pub async fn page(q: String, sort: String, page: u32) -> Result<FleetList, ApiError> {
        let sort = Sort::parse(&sort);
        let groups = ssr::groups(|f| f.groups().map_err(GroupError::Storage)).await?;
        let lookup = |id: &str| groups.iter().find(|g| g.id == id).map(|g| g.query.clone());
        let query = Query::parse_with_groups(&q, lookup).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let current = ssr::read(|s| s.devices()).await?;
        let counts = ssr::desk(|d| d.open_counts()).await?;
        let now = ssr::now();
        let fleet = current.value.len();
        let mut matching: Vec<DeviceSummary> =
            current.value.into_iter().filter(|d| query.matches(d, now)).collect();
        let summary = summarize(&matching, now);
        let alarms_of = |id: &str| counts.get(id).copied().unwrap_or(0);
        let day = telemetry::connections::WINDOWS[0].1;
        let shares_of =
            |ids: Vec<String>| ssr::read(move |s| s.availability(&ids, now.saturating_sub(day), now));
        // Sorted by "Up 24 h": every matching device's share, read in one go (one transaction,
        // at most 100 entries a log); otherwise only the page's.
        let all_shares = if sort.key == SortKey::Up {
            let ids: Vec<String> = matching.iter().map(|d| d.id.clone()).collect();
            let shares = shares_of(ids.clone()).await?;
            let by_id: std::collections::HashMap<String, Option<f64>> = ids.into_iter().zip(shares).collect();
            sort_devices_by(&mut matching, sort, now, alarms_of, |id| by_id.get(id).copied().flatten());
            Some(by_id)
        } else {
            sort_devices(&mut matching, sort, now, alarms_of);
            None
        };
        let total = matching.len();
        let pages = pages(total);
        let page = (page as usize).clamp(1, pages);
        let mut rows: Vec<FleetRow> = matching
            .into_iter()
            .skip((page - 1) * PAGE_ROWS)
            .take(PAGE_ROWS)
            .map(|device| FleetRow { alarms: alarms_of(&device.id), device, availability: None })
            .collect();
        match all_shares {
            Some(by_id) => {
                for row in &mut rows {
                    row.availability = by_id.get(&row.device.id).copied().flatten();
                }
            }
            None => {
                // This page's rows only (at most 100 logs of at most 100 entries).
                let ids: Vec<String> = rows.iter().map(|r| r.device.id.clone()).collect();
                for (row, share) in rows.iter_mut().zip(shares_of(ids).await?) {
                    row.availability = share;
                }
            }
        }
        Ok(FleetList {
            server_time: now,
            last_seq: current.last_seq,
            rows,
            matching: total,
            fleet,
            page,
            pages,
            summary,
            groups,
        })
    }

    /// `q` parsed with the stored groups put in (a mistake is a 400 saying where), and every
    /// device (with its refusals).
    pub async fn query_and_devices(q: &str) -> Result<(Query, Vec<DeviceSummary>), ApiError> {
        let parsed = Query::parse(q).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let groups = if parsed.groups().is_empty() {
            Vec::new()
        } else {
            ssr::groups(|f| f.groups().map_err(telemetry::fleet::GroupError::Storage)).await?
        };
        let query =
            Query::parse_with_groups(q, |id| groups.iter().find(|g| g.id == id).map(|g| g.query.clone()))
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let devices = ssr::read(|s| s.devices()).await?.value;
        Ok((query, devices))
    }

    /// Where a plain form goes back to: the fleet view it was posted from (only a `/fleet`
    /// address; anything else is the fleet view).
    pub fn back_to_fleet(back: Option<&str>) -> String {
        match back {
            Some(b) if (b == "/fleet" || b.starts_with("/fleet?")) && !b.contains(['\r', '\n']) => {
                b.to_owned()
            }
            _ => "/fleet".to_owned(),
        }
    }
}
