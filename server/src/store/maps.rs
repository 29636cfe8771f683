//! The hash maps and sets the store keeps in memory.

/// The store's in-memory maps, looked up for every reading: foldhash, not std's SipHash, which
/// was 2% of ingest. It is seeded per process; device ids and metric names come from
/// authenticated devices, within the per-device metric limit.
pub(super) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(super) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
