//! The fleet view's addresses: query, order and page live in the URL
//! (`/fleet?q=tag:site%3Dgreenhouse&sort=-seen&page=2`), so every view is a link that works
//! without JavaScript and can be bookmarked.

use telemetry::fleet::Sort;

use super::alarms::encode;

/// Rows on one page of the fleet view.
pub const PAGE_ROWS: usize = 100;

/// What the fleet view shows: the query's text, the order, the page (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetView {
    pub q: String,
    pub sort: Sort,
    pub page: usize,
}

impl FleetView {
    /// From the address's `q`, `sort` and `page` (anything unreadable: the default).
    pub fn from_params(q: Option<String>, sort: Option<String>, page: Option<String>) -> FleetView {
        FleetView {
            q: q.unwrap_or_default(),
            sort: Sort::parse(sort.as_deref().unwrap_or_default()),
            page: page.and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
        }
    }

    /// The address of this view.
    pub fn href(&self) -> String {
        let mut out = String::from("/fleet");
        let mut sep = '?';
        let mut param = |key: &str, value: &str| {
            out.push(sep);
            sep = '&';
            out.push_str(key);
            out.push('=');
            out.push_str(&encode(value));
        };
        if !self.q.trim().is_empty() {
            param("q", self.q.trim());
        }
        if self.sort != Sort::default() {
            param("sort", &self.sort.as_string());
        }
        if self.page > 1 {
            param("page", &self.page.to_string());
        }
        out
    }

    /// The list as CSV (every matching device, in this order).
    pub fn csv_href(&self) -> String {
        let mut href = format!("/api/fleet.csv?q={}", encode(self.q.trim()));
        if self.sort != Sort::default() {
            href.push_str(&format!("&sort={}", encode(&self.sort.as_string())));
        }
        href
    }

    /// The matching devices' readings over the last 24 h, as CSV.
    pub fn readings_href(&self) -> String {
        format!("/api/export.csv?q={}", encode(self.q.trim()))
    }

    /// Another page of it.
    pub fn at_page(&self, page: usize) -> FleetView {
        FleetView { page, ..self.clone() }
    }

    /// Sorted another way (back to the first page).
    pub fn sorted(&self, sort: Sort) -> FleetView {
        FleetView { sort, page: 1, ..self.clone() }
    }

    /// Narrowed by one more term (a chip's link): `term` added unless it is there already.
    pub fn narrowed(&self, term: &str) -> FleetView {
        let q = self.q.trim();
        let q = if q.split_whitespace().any(|t| t == term) {
            q.to_owned()
        } else if q.is_empty() {
            term.to_owned()
        } else if q.contains(" OR ") {
            format!("({q}) {term}")
        } else {
            format!("{q} {term}")
        };
        FleetView { q, sort: self.sort, page: 1 }
    }
}

/// A query term for `field` and `value` (`fw:1.4.2`, `fw:"1.4 beta"`), or none when the value
/// cannot be written in a query (it holds a quote).
pub fn term(field: &str, value: &str) -> Option<String> {
    if value.is_empty() || value.contains('"') {
        return None;
    }
    let plain = !value.chars().any(|c| c.is_whitespace() || c == '(' || c == ')') && value != "OR";
    Some(if plain { format!("{field}:{value}") } else { format!("{field}:\"{value}\"") })
}

/// The fleet view filtered by `q`.
pub fn fleet_href(q: &str) -> String {
    FleetView { q: q.to_owned(), sort: Sort::default(), page: 1 }.href()
}

/// Pages `total` rows make (at least one).
pub fn pages(total: usize) -> usize {
    total.div_ceil(PAGE_ROWS).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_links_and_back() {
        let view = FleetView::from_params(
            Some("tag:site=greenhouse fw!=1.4.2".into()),
            Some("-seen".into()),
            Some("2".into()),
        );
        assert_eq!(view.href(), "/fleet?q=tag%3Asite%3Dgreenhouse%20fw%21%3D1.4.2&sort=-seen&page=2");
        assert_eq!(FleetView::from_params(None, None, Some("0".into())).href(), "/fleet");
        assert_eq!(FleetView::from_params(None, Some("nonsense".into()), Some("x".into())).page, 1);
        assert_eq!(view.at_page(1).href(), "/fleet?q=tag%3Asite%3Dgreenhouse%20fw%21%3D1.4.2&sort=-seen");
        assert_eq!(fleet_href("tag:site=a"), "/fleet?q=tag%3Asite%3Da");
        assert_eq!(fleet_href("<script>"), "/fleet?q=%3Cscript%3E");
    }

    #[test]
    fn terms_are_quoted_when_they_must_be() {
        assert_eq!(term("fw", "1.4.2").as_deref(), Some("fw:1.4.2"));
        assert_eq!(term("fw", "1.4 beta").as_deref(), Some("fw:\"1.4 beta\""));
        assert_eq!(term("fw", "a\"b"), None);
        for value in ["1.4.2", "1.4 beta", "x(y)", "OR"] {
            let q = telemetry::query::Query::parse(&term("fw", value).unwrap()).unwrap();
            assert_eq!(q.to_string(), term("fw", value).unwrap(), "reads back as written");
        }
        let view = FleetView::from_params(Some("tag:a=b".into()), Some("-seen".into()), None);
        assert_eq!(view.csv_href(), "/api/fleet.csv?q=tag%3Aa%3Db&sort=-seen");
        assert_eq!(view.readings_href(), "/api/export.csv?q=tag%3Aa%3Db");
    }

    #[test]
    fn a_chip_narrows_the_query_once() {
        let view = FleetView::from_params(Some("tag:site=a".into()), None, Some("3".into()));
        assert_eq!(view.narrowed("signal:weak").q, "tag:site=a signal:weak");
        assert_eq!(view.narrowed("signal:weak").page, 1);
        assert_eq!(view.narrowed("tag:site=a").q, "tag:site=a");
        let or = FleetView::from_params(Some("fw:1 OR fw:2".into()), None, None);
        assert_eq!(or.narrowed("status:stale").q, "(fw:1 OR fw:2) status:stale");
        assert_eq!(FleetView::from_params(None, None, None).narrowed("battery:low").q, "battery:low");
        assert_eq!((pages(0), pages(100), pages(101)), (1, 1, 2));
    }
}
