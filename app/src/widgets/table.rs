//! Table widget: the latest value of chosen metrics for many devices, with status and last
//! seen; click a column to sort by it (again to reverse).

use std::cmp::Ordering;

use leptos::prelude::*;
use telemetry::DeviceSummary;
use telemetry::dashboard::Widget;

use crate::logic::format;
use crate::state::board::Board;
use crate::widgets::icon::{Icon, Lucide};

/// What a table is sorted by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Device,
    LastSeen,
    Metric(String),
}

/// Orders device rows; devices without the metric go last either way.
pub fn sort_rows(rows: &mut [DeviceSummary], key: &SortKey, ascending: bool) {
    rows.sort_by(|a, b| {
        let ord = match key {
            SortKey::Device => a.id.cmp(&b.id),
            SortKey::LastSeen => a.last_seen.cmp(&b.last_seen),
            SortKey::Metric(m) => match (a.metric(m), b.metric(m)) {
                (Some(x), Some(y)) => x.value.partial_cmp(&y.value).unwrap_or(Ordering::Equal),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        if ascending { ord } else { ord.reverse() }.then_with(|| a.id.cmp(&b.id))
    });
}

#[component]
pub fn Table(widget: Widget) -> impl IntoView {
    let board = expect_context::<Board>();
    let sort = RwSignal::new((SortKey::Device, true));
    let metrics = {
        let widget = widget.clone();
        Memo::new(move |_| board.metrics_of(&widget))
    };
    let rows = {
        let widget = widget.clone();
        Memo::new(move |_| {
            let ids = board.devices_of(&widget);
            let mut rows: Vec<DeviceSummary> =
                board.devices.with(|all| ids.iter().filter_map(|id| all.get(id).cloned()).collect());
            sort.with(|(key, asc)| sort_rows(&mut rows, key, *asc));
            rows
        })
    };
    let header = move |label: String, key: SortKey| {
        let k = key.clone();
        // Some(ascending) for the column the rows are sorted by.
        let order = Memo::new(move |_| sort.with(|(s, asc)| (*s == k).then_some(*asc)));
        let aria = move || match order.get() {
            Some(true) => "ascending",
            Some(false) => "descending",
            None => "none",
        };
        let arrow = move || {
            order.get().map(|asc| {
                let icon = if asc { Lucide::ChevronUp } else { Lucide::ChevronDown };
                view! { <Icon icon/> }
            })
        };
        view! {
            <th aria-sort=aria>
                <button type="button" class="sort" on:click=move |_| sort.update(|(s, asc)| {
                    if *s == key { *asc = !*asc } else { *s = key.clone(); *asc = true }
                })>{label}{arrow}</button>
            </th>
        }
    };
    let unit_override = widget.unit.clone();
    let decimals = widget.decimals;
    view! {
        <div class="table-scroll">
            <table class="readings">
                <thead>
                    <tr>
                        {header("Device".into(), SortKey::Device)}
                        {move || metrics.get().into_iter().map(|m| header(m.clone(), SortKey::Metric(m))).collect_view()}
                        {header("Last seen".into(), SortKey::LastSeen)}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let metrics = metrics.get();
                        let unit_override = unit_override.clone();
                        rows.get()
                            .into_iter()
                            .map(|d| {
                                let health = d.health(board.now.get()).label();
                                let cells = metrics
                                    .iter()
                                    .map(|m| {
                                        let unit = unit_override.clone().unwrap_or_else(|| format::unit_for(m).to_owned());
                                        let value = d.metric(m).map(|x| format!("{} {unit}", format::value_with(x.value, decimals)));
                                        view! { <td data-metric=m.clone()>{value.unwrap_or_else(|| "–".into())}</td> }
                                    })
                                    .collect_view();
                                view! {
                                    <tr data-device=d.id.clone() data-health=health>
                                        <td><span class="dot" title=health></span><a href=format!("/device/{}", d.id)>{d.label().to_owned()}</a></td>
                                        {cells}
                                        <td class="muted">{format::age(board.now.get(), d.last_seen)}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::MetricLatest;

    fn dev(id: &str, seen: i64, t: Option<f64>) -> DeviceSummary {
        DeviceSummary {
            id: id.into(),
            first_seen: 0,
            last_seen: seen,
            status: None,
            message_count: 1,
            metrics: t
                .map(|v| vec![MetricLatest { name: "t".into(), value: v, ts: seen }])
                .unwrap_or_default(),
            name: None,
            note: None,
            tags: Default::default(),
            refused: None,
            interval: Default::default(),
            attributes: Vec::new(),
        }
    }

    fn ids(rows: &[DeviceSummary]) -> Vec<&str> {
        rows.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn sorts_by_metric_with_missing_values_last() {
        let mut rows = vec![dev("a", 3, Some(20.0)), dev("b", 1, None), dev("c", 2, Some(5.0))];
        sort_rows(&mut rows, &SortKey::Metric("t".into()), true);
        assert_eq!(ids(&rows), ["c", "a", "b"]);
        sort_rows(&mut rows, &SortKey::Metric("t".into()), false);
        assert_eq!(ids(&rows), ["a", "c", "b"]);
        sort_rows(&mut rows, &SortKey::LastSeen, false);
        assert_eq!(ids(&rows), ["a", "c", "b"]);
        sort_rows(&mut rows, &SortKey::Device, true);
        assert_eq!(ids(&rows), ["a", "b", "c"]);
    }
}
