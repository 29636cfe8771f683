//! Series ids in memory, by device then metric, so a reading's id is found from borrowed
//! names: no allocation per reading on the ingest path.

#[derive(Default)]
pub(super) struct SeriesIds(super::maps::FastMap<String, super::maps::FastMap<String, u32>>);

impl SeriesIds {
    pub fn get(&self, device: &str, metric: &str) -> Option<u32> {
        self.0.get(device)?.get(metric).copied()
    }

    pub fn insert(&mut self, device: String, metric: String, id: u32) {
        self.0.entry(device).or_default().insert(metric, id);
    }

    pub fn remove(&mut self, device: &str, metric: &str) {
        if let Some(metrics) = self.0.get_mut(device) {
            metrics.remove(metric);
            if metrics.is_empty() {
                self.0.remove(device);
            }
        }
    }

    /// Every series id.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.values().flat_map(|m| m.values().copied())
    }
}

impl Extend<((String, String), u32)> for SeriesIds {
    fn extend<I: IntoIterator<Item = ((String, String), u32)>>(&mut self, iter: I) {
        for ((device, metric), id) in iter {
            self.insert(device, metric, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_by_device_and_metric_and_removed_one_by_one() {
        let mut ids = SeriesIds::default();
        ids.extend([
            (("a".into(), "t".into()), 1),
            (("a".into(), "h".into()), 2),
            (("b".into(), "t".into()), 3),
        ]);
        assert_eq!((ids.get("a", "t"), ids.get("a", "h"), ids.get("b", "t")), (Some(1), Some(2), Some(3)));
        assert_eq!(ids.get("b", "h"), None);
        ids.remove("a", "t");
        assert_eq!(ids.get("a", "t"), None);
        let mut all: Vec<u32> = ids.ids().collect();
        all.sort();
        assert_eq!(all, [2, 3]);
    }
}
