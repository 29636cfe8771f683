//! Packed rollups: one row holds one series' summaries of the periods in a group (the minutes
//! of an hour, say), coded as sealed [chunks](super::super::codec) code readings.
//!
//! When every min, max and last in the row is a decimal of at most six places, they are scaled
//! integers, each coded against a prediction from the period's mean (its sum over its count),
//! and the sum is a scaled integer plus the float's distance from it in units of its last place
//! (float additions leave it a few units off the decimal). Otherwise each of the four floats
//! takes Gorilla's XOR coding. The period's place in the group, the count and the last reading's
//! time within the period are coded against the period before. Every number is then an
//! exp-Golomb code whose order follows the recent size of that field's numbers: a field that
//! never changes costs a bit, a noisy one little more than its noise. Every value is restored
//! bit for bit.
//!
//! Layout: version, value coding (decimal places, or [`XOR`]), varint number of summaries, then
//! the bit stream, summary after summary.

use telemetry::Millis;
use telemetry::history::Summary;

use super::super::codec::{
    BitReader, BitWriter, CorruptChunk, MAX_PLACES, XorState, decimal_places, get_varint, put_varint,
    unzigzag, zigzag,
};

const VERSION: u8 = 1;
/// The value coding of a row whose values are not all short decimals.
const XOR: u8 = u8::MAX;

/// Where a row's summaries sit: the first period of its group, the length of a period, and
/// how many periods a group has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub start: Millis,
    pub period: Millis,
    pub periods: u32,
}

/// Encodes summaries of periods of `group`, each keyed by its period's start (in order, no two
/// alike, at least one).
pub fn encode(group: Group, summaries: &[(Millis, Summary)]) -> Vec<u8> {
    assert!(!summaries.is_empty(), "a row holds at least one summary");
    let places = decimal_places(summaries.iter().flat_map(|(_, s)| [s.min, s.max, s.last]));
    let mut out = vec![VERSION, places.map_or(XOR, |p| p as u8)];
    put_varint(&mut out, summaries.len() as u64);
    let mut bits = BitWriter::default();
    let mut fields = Fields::default();
    let mut floats = Floats::default();
    let mut prev = Prev::default();
    for (start, s) in summaries {
        let index = (start - group.start) / group.period;
        let gap = index.wrapping_sub(prev.index);
        fields.gap.put(&mut bits, gap.wrapping_sub(prev.gap));
        let count = s.count as i64;
        fields.count.put(&mut bits, count.wrapping_sub(prev.count));
        let offset = s.last_t.wrapping_sub(*start);
        fields.offset.put(&mut bits, offset.wrapping_sub(prev.offset));
        match places {
            Some(p) => {
                let scale = 10f64.powi(p as i32);
                let int = |v: f64| (v * scale).round() as i64;
                let sum = int(s.sum);
                fields.sum.put(&mut bits, sum.wrapping_sub(predict_sum(&prev, count)));
                let decimal = sum as f64 / scale;
                fields
                    .rounding
                    .put(&mut bits, (s.sum.to_bits() as i64).wrapping_sub(decimal.to_bits() as i64));
                let mean = sum.checked_div(count).unwrap_or(0);
                let below = mean.wrapping_sub(int(s.min));
                let above = int(s.max).wrapping_sub(mean);
                fields.below.put(&mut bits, below.wrapping_sub(prev.below));
                fields.above.put(&mut bits, above.wrapping_sub(prev.above));
                fields.last.put(&mut bits, int(s.last).wrapping_sub(mean));
                (prev.sum, prev.below, prev.above) = (sum, below, above);
            }
            None => {
                for (state, v) in floats.each().into_iter().zip([s.min, s.max, s.last, s.sum]) {
                    state.put(&mut bits, v.to_bits());
                }
            }
        }
        (prev.index, prev.gap, prev.count, prev.offset) = (index, gap, count, offset);
    }
    out.extend(bits.finish());
    out
}

/// How many summaries a row holds, from its header.
pub fn count(bytes: &[u8]) -> Result<u64, CorruptChunk> {
    header(bytes).map(|(_, n, _)| n)
}

/// Decodes a row of `group`: its summaries, each with its period's start, in order.
pub fn decode(group: Group, bytes: &[u8]) -> Result<Vec<(Millis, Summary)>, CorruptChunk> {
    let (places, n, body) = header(bytes)?;
    // A summary takes at least seven bits.
    if n == 0 || n > u64::from(group.periods) || n > body.len() as u64 * 8 / 7 {
        return Err(CorruptChunk("rollup count"));
    }
    let mut bits = BitReader::new(body);
    let mut fields = Fields::default();
    let mut floats = Floats::default();
    let mut prev = Prev::default();
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let gap = prev.gap.wrapping_add(fields.gap.get(&mut bits)?);
        let index = prev.index.wrapping_add(gap);
        if gap < 1 || !(0..i64::from(group.periods)).contains(&index) {
            return Err(CorruptChunk("rollup period"));
        }
        let start = group.start.checked_add(index * group.period).ok_or(CorruptChunk("rollup period"))?;
        let count = prev.count.wrapping_add(fields.count.get(&mut bits)?);
        let offset = prev.offset.wrapping_add(fields.offset.get(&mut bits)?);
        let [min, max, last, sum] = match places {
            Some(p) => {
                let scale = 10f64.powi(i32::from(p));
                let sum = predict_sum(&prev, count).wrapping_add(fields.sum.get(&mut bits)?);
                let decimal = sum as f64 / scale;
                let float = (decimal.to_bits() as i64).wrapping_add(fields.rounding.get(&mut bits)?);
                let mean = sum.checked_div(count).unwrap_or(0);
                let below = prev.below.wrapping_add(fields.below.get(&mut bits)?);
                let above = prev.above.wrapping_add(fields.above.get(&mut bits)?);
                let last = mean.wrapping_add(fields.last.get(&mut bits)?);
                (prev.sum, prev.below, prev.above) = (sum, below, above);
                let value = |n: i64| n as f64 / scale;
                [
                    value(mean.wrapping_sub(below)),
                    value(mean.wrapping_add(above)),
                    value(last),
                    f64::from_bits(float as u64),
                ]
            }
            None => {
                let mut values = [0.0; 4];
                for (state, v) in floats.each().into_iter().zip(&mut values) {
                    *v = f64::from_bits(state.get(&mut bits)?);
                }
                values
            }
        };
        let summary =
            Summary { min, max, sum, count: count as u64, last, last_t: start.wrapping_add(offset) };
        out.push((start, summary));
        (prev.index, prev.gap, prev.count, prev.offset) = (index, gap, count, offset);
    }
    Ok(out)
}

/// Decimal places (`None`: XOR coding), number of summaries, bit stream.
fn header(bytes: &[u8]) -> Result<(Option<u8>, u64, &[u8]), CorruptChunk> {
    let [version, coding, rest @ ..] = bytes else { return Err(CorruptChunk("short rollup")) };
    if *version != VERSION || (*coding != XOR && u32::from(*coding) > MAX_PLACES) {
        return Err(CorruptChunk("rollup header"));
    }
    let mut rest = rest;
    let n = get_varint(&mut rest)?;
    Ok(((*coding != XOR).then_some(*coding), n, rest))
}

/// The previous summary's numbers, which the next one is coded against.
struct Prev {
    index: i64,
    gap: i64,
    count: i64,
    offset: i64,
    sum: i64,
    below: i64,
    above: i64,
}

impl Default for Prev {
    /// As if a period before the group's first had gone by, so that a full group's places
    /// cost a bit each.
    fn default() -> Prev {
        Prev { index: -1, gap: 1, count: 0, offset: 0, sum: 0, below: 0, above: 0 }
    }
}

/// A period's sum, guessed from the previous one's mean: what the new count of readings would
/// add up to at that mean.
fn predict_sum(prev: &Prev, count: i64) -> i64 {
    if prev.count == 0 || prev.count == count {
        return prev.sum;
    }
    // Both factors fit in 64 bits, so their product fits in 128.
    (i128::from(prev.sum) * i128::from(count) / i128::from(prev.count)) as i64
}

/// One adaptive code per field.
#[derive(Default)]
struct Fields {
    gap: Adaptive,
    count: Adaptive,
    offset: Adaptive,
    sum: Adaptive,
    rounding: Adaptive,
    below: Adaptive,
    above: Adaptive,
    last: Adaptive,
}

/// Gorilla's state per float: min, max, last, sum.
#[derive(Default)]
struct Floats([XorState; 4]);

impl Floats {
    fn each(&mut self) -> [&mut XorState; 4] {
        let [a, b, c, d] = &mut self.0;
        [a, b, c, d]
    }
}

/// Exp-Golomb codes of zigzagged integers whose order is the log of the recent mean size, as
/// LOCO-I picks its Golomb codes: the coder and the decoder both follow it from the numbers
/// already coded.
#[derive(Default)]
struct Adaptive {
    /// Sum of the recent zigzagged numbers (saturating), and how many: halved together every
    /// [`WINDOW`].
    total: u64,
    seen: u64,
}

/// How many numbers an [`Adaptive`] code follows before it halves its memory of them.
const WINDOW: u64 = 8;

impl Adaptive {
    /// The log of the mean, rounded down (as `(total / seen).ilog2()`, without dividing).
    fn order(&self) -> u32 {
        if self.total < self.seen.max(1) {
            return 0;
        }
        let k = self.total.ilog2() - self.seen.ilog2();
        let k = if u128::from(self.seen) << k > u128::from(self.total) { k - 1 } else { k };
        k.min(62)
    }

    fn saw(&mut self, z: u64) {
        self.total = self.total.saturating_add(z);
        self.seen += 1;
        if self.seen == WINDOW {
            self.total /= 2;
            self.seen /= 2;
        }
    }

    /// Writes `z + 2^k` in as many bits as it has, after one zero per bit it has beyond k + 1.
    fn put(&mut self, w: &mut BitWriter, n: i64) {
        let z = zigzag(n);
        let k = self.order();
        let v = u128::from(z) + (1 << k);
        let len = 128 - v.leading_zeros();
        w.put(0, len - k - 1);
        if len > 64 {
            w.put((v >> 64) as u64, len - 64);
        }
        w.put(v as u64, len.min(64));
        self.saw(z);
    }

    fn get(&mut self, r: &mut BitReader) -> Result<i64, CorruptChunk> {
        let k = self.order();
        // Most codes are short enough to be read from one look at the next 57 bits.
        let next = r.peek();
        let zeros = next.leading_zeros();
        let len = 2 * zeros + k + 1;
        if len <= 57 && r.skip(len) {
            let z = ((next << zeros) >> (64 - (zeros + k + 1))) - (1 << k);
            self.saw(z);
            return Ok(unzigzag(z));
        }
        let zeros = r.zeros(64 - k)?;
        let v = (1u128 << (zeros + k)) | u128::from(r.get(zeros + k)?);
        let z = u64::try_from(v - (1 << k)).map_err(|_| CorruptChunk("rollup code"))?;
        self.saw(z);
        Ok(unzigzag(z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use telemetry::history::{HOUR_MS, MINUTE_MS};

    const HOUR: Group = Group { start: 1_766_145_600_000, period: MINUTE_MS, periods: 60 };

    fn roundtrip(group: Group, summaries: &[(Millis, Summary)]) -> Vec<u8> {
        let bytes = encode(group, summaries);
        let back = decode(group, &bytes).unwrap();
        assert_eq!(back.len(), summaries.len());
        for ((t, a), (u, b)) in back.iter().zip(summaries) {
            let bits = |s: &Summary| {
                (s.min.to_bits(), s.max.to_bits(), s.sum.to_bits(), s.count, s.last.to_bits(), s.last_t)
            };
            assert_eq!((t, bits(a)), (u, bits(b)), "{a:?} vs {b:?}");
        }
        assert_eq!(count(&bytes).unwrap(), summaries.len() as u64);
        bytes
    }

    /// `group`'s periods summarised from `readings` (time, value) in time order, as rollups
    /// are: a summary per reading, merged.
    fn summarise(group: Group, readings: impl IntoIterator<Item = (Millis, f64)>) -> Vec<(Millis, Summary)> {
        let mut out: Vec<(Millis, Summary)> = Vec::new();
        for (t, v) in readings {
            let start = t - (t - group.start).rem_euclid(group.period);
            match out.last_mut() {
                Some((s, summary)) if *s == start => summary.merge(&Summary::of(t, v)),
                _ => out.push((start, Summary::of(t, v))),
            }
        }
        out
    }

    #[test]
    fn an_hour_of_sensor_minutes_takes_a_few_bytes_a_minute() {
        // Two decimals at 1 Hz, a slow drift and noise of ±0.3.
        let mut noise = 7u64;
        let readings = (0..3_600).map(|i| {
            noise = noise.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let jitter = (noise >> 33) % 61;
            let v = 2_100 + i / 60 + jitter as i64 - 30;
            (HOUR.start + i * 1_000, v as f64 / 100.0)
        });
        let minutes = summarise(HOUR, readings);
        assert_eq!(minutes.len(), 60);
        let bytes = roundtrip(HOUR, &minutes);
        assert_eq!(bytes[1], 2, "decimal coding, two places");
        assert!(bytes.len() < 60 * 6, "{} bytes", bytes.len());
    }

    #[test]
    fn floats_that_are_not_short_decimals_and_odd_summaries_still_round_trip() {
        let readings = (0..200).map(|i| (HOUR.start + i * 7_919, (i as f64 * 0.37).sin() / 3.0));
        let bytes = roundtrip(HOUR, &summarise(HOUR, readings));
        assert_eq!(bytes[1], XOR);
        let odd =
            Summary { min: -0.0, max: f64::MAX, sum: f64::INFINITY, count: u64::MAX, last: 1.0, last_t: 0 };
        roundtrip(HOUR, &[(HOUR.start + 59 * MINUTE_MS, odd)]);
        let nan = Summary { sum: f64::NAN, min: 1.5, max: 2.5, last: 2.0, count: 0, last_t: i64::MIN };
        roundtrip(HOUR, &[(HOUR.start, nan), (HOUR.start + 3 * MINUTE_MS, nan)]);
        let day = Group { start: 0, period: HOUR_MS, periods: 24 };
        roundtrip(day, &summarise(day, (0..24 * 60).map(|i| (i * MINUTE_MS, (i % 97) as f64))));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(HOUR, &[]).is_err());
        assert!(decode(HOUR, &[VERSION, 2, 0]).is_err(), "no summaries");
        assert!(decode(HOUR, &[VERSION, 9, 1, 0xff]).is_err(), "seven places");
        let bytes = encode(HOUR, &summarise(HOUR, [(HOUR.start, 1.5), (HOUR.start + MINUTE_MS, 2.5)]));
        assert!(decode(HOUR, &bytes[..bytes.len() - 1]).is_err());
        let narrower = Group { periods: 1, ..HOUR };
        assert!(decode(narrower, &bytes).is_err(), "more summaries than the group has periods");
    }

    fn summary() -> impl Strategy<Value = Summary> {
        (any::<f64>(), any::<f64>(), any::<f64>(), any::<f64>(), any::<u64>(), any::<i64>())
            .prop_map(|(min, max, sum, last, count, last_t)| Summary { min, max, sum, count, last, last_t })
    }

    /// A summary as rollups hold them: decimals of `places`, `count` readings.
    fn decimal_summary(places: i32) -> impl Strategy<Value = Summary> {
        (prop::collection::vec(-1_000_000i64..1_000_000, 1..80), 0i64..MINUTE_MS).prop_map(move |(ns, at)| {
            let scale = 10f64.powi(places);
            let mut s = Summary::of(at, ns[0] as f64 / scale);
            for n in &ns[1..] {
                s.merge(&Summary::of(at, *n as f64 / scale));
            }
            s
        })
    }

    fn periods(
        group: Group,
        summary: impl Strategy<Value = Summary>,
    ) -> impl Strategy<Value = Vec<(Millis, Summary)>> {
        prop::collection::btree_map(0..group.periods, summary, 1..=group.periods as usize).prop_map(
            move |m| {
                m.into_iter()
                    .map(|(i, mut s)| {
                        let start = group.start + i64::from(i) * group.period;
                        s.last_t = s.last_t.wrapping_add(start);
                        (start, s)
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn any_summaries_round_trip(row in periods(HOUR, summary())) {
            roundtrip(HOUR, &row);
        }

        #[test]
        fn decimal_summaries_round_trip(row in (0i32..=6).prop_flat_map(|p| periods(HOUR, decimal_summary(p)))) {
            let bytes = roundtrip(HOUR, &row);
            prop_assert_ne!(bytes[1], XOR);
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(HOUR, &bytes);
        }

        #[test]
        fn decoding_any_bit_stream_never_panics(
            coding in prop_oneof![0u8..=6, Just(XOR)],
            n in 1u8..=60,
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let _ = decode(HOUR, &[&[VERSION, coding, n][..], &body].concat());
        }
    }
}
