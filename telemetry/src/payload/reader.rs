//! Reads a device payload in one pass, without building a JSON tree: only `telemetry`'s names
//! and numbers and `timestamp` are kept, everything else is skipped as it is read. This is the
//! ingest hot path; the outcome is the same as reading the whole document first (a repeated key
//! counts once, the last time it appears; nesting deeper than serde_json's limit is not JSON).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::RejectReason;

/// The fields of a payload object the contract reads.
pub(super) struct Fields {
    pub telemetry: Telemetry,
    pub timestamp: Option<Value>,
}

pub(super) enum Telemetry {
    Missing,
    NotObject,
    /// Name and value as sent, sorted by name, each name once.
    Metrics(Vec<(String, Option<f64>)>),
}

/// `payload`'s fields, or why it is not a JSON object.
pub(super) fn read(payload: &[u8]) -> Result<Fields, RejectReason> {
    let not_json = |e: serde_json::Error| RejectReason::NotJson(e.to_string());
    let mut de = serde_json::Deserializer::from_slice(payload);
    let fields = de.deserialize_any(Top).map_err(not_json)?;
    de.end().map_err(not_json)?;
    fields.ok_or(RejectReason::NotObject)
}

/// Skips the rest of a sequence a visitor has no use for.
fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element_seed(Skip)?.is_some() {}
    Ok(())
}

/// Skips the rest of a map a visitor has no use for.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry_seed(Skip, Skip)?.is_some() {}
    Ok(())
}

/// Implements every non-container `visit_*` of a visitor as `$value`.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Each visitor is also the seed that reads its value, through `$read`.
macro_rules! seed_reads_with {
    ($visitor:ty, $read:ident) => {
        impl<'de> DeserializeSeed<'de> for $visitor {
            type Value = <Self as Visitor<'de>>::Value;

            fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
                de.$read(self)
            }
        }
    };
}

/// The document: `Some` for an object, `None` for anything else.
struct Top;

impl<'de> Visitor<'de> for Top {
    type Value = Option<Fields>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars_are!(None);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields { telemetry: Telemetry::Missing, timestamp: None };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                TopKey::Telemetry => fields.telemetry = map.next_value_seed(TelemetryValue)?,
                TopKey::Timestamp => fields.timestamp = Some(map.next_value()?),
                TopKey::Other => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(fields))
    }
}

/// A key of the document that the contract reads.
enum TopKey {
    Telemetry,
    Timestamp,
    Other,
}

/// Reads a key of the document, compared without being copied.
struct KeySeed;

seed_reads_with!(KeySeed, deserialize_str);

impl<'de> Visitor<'de> for KeySeed {
    type Value = TopKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<TopKey, E> {
        Ok(match key {
            "telemetry" => TopKey::Telemetry,
            "timestamp" => TopKey::Timestamp,
            _ => TopKey::Other,
        })
    }
}

/// The `telemetry` field's value.
struct TelemetryValue;

seed_reads_with!(TelemetryValue, deserialize_any);

impl<'de> Visitor<'de> for TelemetryValue {
    type Value = Telemetry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars_are!(Telemetry::NotObject);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Telemetry, A::Error> {
        drain(seq)?;
        Ok(Telemetry::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Telemetry, A::Error> {
        let mut metrics = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(name) = map.next_key::<String>()? {
            metrics.push((name, map.next_value_seed(MetricValue)?));
        }
        // Sorted by name; of a repeated name only the last stays, as in a parsed object.
        metrics.sort_by(|a: &(String, _), b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, Option<f64>)> = Vec::with_capacity(metrics.len());
        for metric in metrics {
            match unique.last_mut() {
                Some(last) if last.0 == metric.0 => *last = metric,
                _ => unique.push(metric),
            }
        }
        Ok(Telemetry::Metrics(unique))
    }
}

/// A metric's value: the number, or `None` for anything that is not a number.
struct MetricValue;

seed_reads_with!(MetricValue, deserialize_any);

impl<'de> Visitor<'de> for MetricValue {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Option<f64>, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Option<f64>, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_unit<E: Error>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<f64>, A::Error> {
        drain(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<f64>, A::Error> {
        drain_map(map)?;
        Ok(None)
    }
}

/// A value read and dropped. Unlike serde's `IgnoredAny` it goes through `deserialize_any`, so
/// serde_json's nesting limit applies to skipped values as it does to a parsed document.
struct Skip;

seed_reads_with!(Skip, deserialize_any);

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalars_are!(());

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        drain_map(map)
    }
}
