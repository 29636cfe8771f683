//! Sealed chunks: a run of one series' readings, compressed.
//!
//! Times are delta-of-delta coded (a reading every second costs one bit). Values take one of
//! two codings, whichever the chunk allows: sensors report decimals ("25.53"), so when every
//! value is exactly a decimal of at most six places, the scaled integers' deltas are coded
//! like the times (a step of 0.1 at two places costs nine bits); otherwise Gorilla's XOR of
//! consecutive floats. Both restore every value bit for bit.
//!
//! Layout: version, value coding, decimal places, varint count, zigzag-varint first and last
//! time, then the bit stream.

use telemetry::Millis;

const VERSION: u8 = 1;
const XOR: u8 = 0;
const DECIMAL: u8 = 1;
pub(super) const MAX_PLACES: u32 = 6;
/// Integers beyond this are not exact in an f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// What a chunk's header says without decoding its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub count: u64,
    pub first: Millis,
    pub last: Millis,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt chunk: {0}")]
pub struct CorruptChunk(pub(super) &'static str);

/// Encodes time-ordered readings (strictly increasing times, at least one).
pub fn encode(points: &[(Millis, f64)]) -> Vec<u8> {
    assert!(!points.is_empty(), "a chunk holds at least one reading");
    let places = decimal_places(points.iter().map(|p| p.1));
    let mut out = vec![VERSION, if places.is_some() { DECIMAL } else { XOR }, places.unwrap_or(0) as u8];
    put_varint(&mut out, points.len() as u64);
    put_varint(&mut out, zigzag(points[0].0));
    put_varint(&mut out, zigzag(points[points.len() - 1].0));
    let mut bits = BitWriter::default();
    let mut delta = 0i64;
    for w in points.windows(2) {
        let d = w[1].0.wrapping_sub(w[0].0);
        put_signed(&mut bits, d.wrapping_sub(delta));
        delta = d;
    }
    match places {
        Some(p) => {
            let scale = 10f64.powi(p as i32);
            let mut prev = 0i64;
            for (_, v) in points {
                let n = (v * scale).round() as i64;
                put_signed(&mut bits, n.wrapping_sub(prev));
                prev = n;
            }
        }
        None => {
            let mut xor = XorState::default();
            for (_, v) in points {
                xor.put(&mut bits, v.to_bits());
            }
        }
    }
    out.extend(bits.finish());
    out
}

/// Reads a chunk's header.
pub fn info(bytes: &[u8]) -> Result<ChunkInfo, CorruptChunk> {
    header(bytes).map(|(info, ..)| info)
}

/// Decodes every reading in a chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<(Millis, f64)>, CorruptChunk> {
    let (info, kind, places, body) = header(bytes)?;
    let n = usize::try_from(info.count).map_err(|_| CorruptChunk("count"))?;
    // Each reading past the first takes at least two bits.
    if n == 0 || n - 1 > body.len() * 4 {
        return Err(CorruptChunk("count"));
    }
    let mut bits = BitReader::new(body);
    let mut times = Vec::with_capacity(n);
    let (mut t, mut delta) = (info.first, 0i64);
    times.push(t);
    for _ in 1..n {
        delta = delta.wrapping_add(get_signed(&mut bits)?);
        t = t.wrapping_add(delta);
        times.push(t);
    }
    if t != info.last {
        return Err(CorruptChunk("times"));
    }
    let mut out = Vec::with_capacity(n);
    match kind {
        DECIMAL => {
            let scale = 10f64.powi(i32::from(places));
            let mut n = 0i64;
            for t in times {
                n = n.wrapping_add(get_signed(&mut bits)?);
                out.push((t, n as f64 / scale));
            }
        }
        _ => {
            let mut xor = XorState::default();
            for t in times {
                out.push((t, f64::from_bits(xor.get(&mut bits)?)));
            }
        }
    }
    Ok(out)
}

type Header<'a> = (ChunkInfo, u8, u8, &'a [u8]);

fn header(bytes: &[u8]) -> Result<Header<'_>, CorruptChunk> {
    let [version, kind, places, rest @ ..] = bytes else { return Err(CorruptChunk("short")) };
    if *version != VERSION || *kind > DECIMAL || u32::from(*places) > MAX_PLACES {
        return Err(CorruptChunk("header"));
    }
    let mut rest = rest;
    let count = get_varint(&mut rest)?;
    let first = unzigzag(get_varint(&mut rest)?);
    let last = unzigzag(get_varint(&mut rest)?);
    Ok((ChunkInfo { count, first, last }, *kind, *places, rest))
}

/// The fewest decimal places that write every value exactly, if six or fewer do.
pub(super) fn decimal_places(values: impl Iterator<Item = f64> + Clone) -> Option<u32> {
    (0..=MAX_PLACES).find(|&p| {
        let scale = 10f64.powi(p as i32);
        values.clone().all(|v| {
            let n = (v * scale).round();
            // Checked as decoding restores it (so -0.0, say, is not taken for 0).
            n.abs() < EXACT && ((n as i64) as f64 / scale).to_bits() == v.to_bits()
        })
    })
}

/// Gorilla's float coding: each value XOR the one before, skipping the zero bits the two share.
#[derive(Default)]
pub(super) struct XorState {
    prev: Option<u64>,
    lead: u32,
    trail: u32,
}

impl XorState {
    pub(super) fn put(&mut self, w: &mut BitWriter, v: u64) {
        let Some(prev) = self.prev.replace(v) else {
            w.put(v, 64);
            self.lead = u32::MAX;
            return;
        };
        let x = v ^ prev;
        if x == 0 {
            w.put(0, 1);
            return;
        }
        let (lead, trail) = (x.leading_zeros().min(31), x.trailing_zeros());
        if self.lead != u32::MAX && lead >= self.lead && trail >= self.trail {
            w.put(0b10, 2);
            w.put(x >> self.trail, 64 - self.lead - self.trail);
        } else {
            let width = 64 - lead - trail;
            w.put(0b11, 2);
            w.put(u64::from(lead), 5);
            w.put(u64::from(width - 1), 6);
            w.put(x >> trail, width);
            (self.lead, self.trail) = (lead, trail);
        }
    }

    pub(super) fn get(&mut self, r: &mut BitReader) -> Result<u64, CorruptChunk> {
        let Some(prev) = self.prev else {
            let v = r.get(64)?;
            self.prev = Some(v);
            self.lead = u32::MAX;
            return Ok(v);
        };
        let x = if r.get(1)? == 0 {
            0
        } else if r.get(1)? == 0 {
            if self.lead == u32::MAX {
                return Err(CorruptChunk("xor window"));
            }
            r.get(64 - self.lead - self.trail)? << self.trail
        } else {
            let lead = r.get(5)? as u32;
            let width = r.get(6)? as u32 + 1;
            let trail = 64u32.checked_sub(lead + width).ok_or(CorruptChunk("xor width"))?;
            (self.lead, self.trail) = (lead, trail);
            r.get(width)? << trail
        };
        let v = prev ^ x;
        self.prev = Some(v);
        Ok(v)
    }
}

/// Signed integers in prefix classes: 0 in one bit, small ones in 9, 15, 24 bits, any in 68.
const CLASSES: [(u64, u32, u32); 3] = [(0b10, 2, 7), (0b110, 3, 12), (0b1110, 4, 20)];

fn put_signed(w: &mut BitWriter, n: i64) {
    if n == 0 {
        w.put(0, 1);
        return;
    }
    for (prefix, len, bits) in CLASSES {
        let half = 1i64 << (bits - 1);
        if (-half..half).contains(&n) {
            w.put(prefix, len);
            w.put(n as u64 & ((1 << bits) - 1), bits);
            return;
        }
    }
    w.put(0b1111, 4);
    w.put(n as u64, 64);
}

fn get_signed(r: &mut BitReader) -> Result<i64, CorruptChunk> {
    let mut ones = 0;
    while ones < 4 && r.get(1)? == 1 {
        ones += 1;
    }
    let bits = match ones {
        0 => return Ok(0),
        1..=3 => CLASSES[ones - 1].2,
        _ => return Ok(r.get(64)? as i64),
    };
    let raw = r.get(bits)?;
    // Sign-extend from `bits`.
    Ok(((raw << (64 - bits)) as i64) >> (64 - bits))
}

#[derive(Default)]
pub(super) struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    /// Bits held in `acc` (fewer than 8 between calls).
    n: u32,
}

impl BitWriter {
    /// Appends the low `len` bits of `v` (len ≤ 64), most significant first.
    pub(super) fn put(&mut self, v: u64, len: u32) {
        if len > 56 {
            self.put(v >> 32, len - 32);
            self.put(v & 0xffff_ffff, 32);
            return;
        }
        let v = if len == 64 { v } else { v & ((1u64 << len) - 1) };
        self.acc = (self.acc << len) | v;
        self.n += len;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next bit to read, from the start.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    /// The next 57 bits at least, from the first, in the top of a word (zeros past the end).
    pub(super) fn peek(&self) -> u64 {
        let at = self.pos / 8;
        let word = match self.bytes.get(at..at + 8) {
            Some(eight) => u64::from_be_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut window = [0u8; 8];
                let have = self.bytes.len().saturating_sub(at).min(8);
                window[..have].copy_from_slice(&self.bytes[at..at + have]);
                u64::from_be_bytes(window)
            }
        };
        word << (self.pos % 8)
    }

    /// Reads `len` bits (len ≤ 64), most significant first.
    pub(super) fn get(&mut self, len: u32) -> Result<u64, CorruptChunk> {
        if len > 32 {
            let high = self.get(len - 32)?;
            return Ok((high << 32) | self.get(32)?);
        }
        if len == 0 {
            return Ok(0);
        }
        let end = self.pos + len as usize;
        if end > self.bytes.len() * 8 {
            return Err(CorruptChunk("truncated"));
        }
        let v = self.peek() >> (64 - len);
        self.pos = end;
        Ok(v)
    }

    /// Moves past `len` bits; whether there were that many.
    pub(super) fn skip(&mut self, len: u32) -> bool {
        let end = self.pos + len as usize;
        if end > self.bytes.len() * 8 {
            return false;
        }
        self.pos = end;
        true
    }

    /// Reads zero bits and the one bit that ends them; returns how many zeros there were
    /// (more than `max` is an error).
    pub(super) fn zeros(&mut self, max: u32) -> Result<u32, CorruptChunk> {
        let mut zeros = 0;
        loop {
            let left = (self.bytes.len() * 8 - self.pos).min(57) as u32;
            if left == 0 {
                return Err(CorruptChunk("truncated"));
            }
            let lead = self.peek().leading_zeros().min(left);
            zeros += lead;
            if zeros > max {
                return Err(CorruptChunk("too many zeros"));
            }
            if lead < left {
                self.pos += lead as usize + 1;
                return Ok(zeros);
            }
            self.pos += left as usize;
        }
    }
}

pub(super) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

pub(super) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn get_varint(bytes: &mut &[u8]) -> Result<u64, CorruptChunk> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(CorruptChunk("truncated header"))?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(n);
        }
    }
    Err(CorruptChunk("varint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(points: &[(Millis, f64)]) -> Vec<u8> {
        let bytes = encode(points);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), points.len());
        for (a, b) in back.iter().zip(points) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "{a:?} vs {b:?}");
        }
        let info = info(&bytes).unwrap();
        assert_eq!(
            (info.count, info.first, info.last),
            (points.len() as u64, points[0].0, points.last().unwrap().0)
        );
        bytes
    }

    #[test]
    fn sensor_decimals_at_one_hertz_take_under_two_bytes_a_reading() {
        let mut v = 2_553i64;
        let points: Vec<(Millis, f64)> = (0..3_600)
            .map(|i| {
                v += [-3, 1, 0, 2, -1, 4, -2][i % 7];
                (1_766_146_880_000 + i as i64 * 1_000, v as f64 / 100.0)
            })
            .collect();
        let bytes = roundtrip(&points);
        assert!(bytes.len() < 3_600 * 2, "{} bytes", bytes.len());
    }

    #[test]
    fn floats_that_are_not_short_decimals_still_round_trip() {
        let points: Vec<(Millis, f64)> =
            (0..500).map(|i| (i * 997, (i as f64 * 0.37).sin() * 1e-3 + 1.0 / 3.0)).collect();
        let bytes = roundtrip(&points);
        assert_eq!(bytes[1], XOR);
        roundtrip(&[(5, -0.0), (6, f64::MAX), (7, f64::MIN_POSITIVE), (i64::MAX, 1.0)]);
        roundtrip(&[(i64::MIN, 7.0)]);
    }

    #[test]
    fn runs_of_zeros_are_counted_across_words() {
        let runs = [0, 3, 31, 32, 40, 64];
        let mut w = BitWriter::default();
        for n in runs {
            w.put(0, n);
            w.put(1, 1);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for n in runs {
            assert_eq!(r.zeros(64), Ok(n));
        }
        assert!(BitReader::new(&[0, 0]).zeros(64).is_err(), "no one bit");
        assert!(BitReader::new(&[0, 1]).zeros(14).is_err(), "more zeros than allowed");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 9, 9]).is_err());
        let mut bytes = encode(&[(1, 1.5), (2, 2.5), (4, 9.25)]);
        bytes.truncate(bytes.len() - 1);
        assert!(decode(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn every_series_round_trips(
            start in any::<i64>(),
            steps in prop::collection::vec((1i64..100_000, any::<f64>()), 1..300),
            decimals in any::<bool>(),
        ) {
            let mut t = start;
            let mut points = Vec::new();
            for (step, v) in steps {
                let v = if decimals { (v % 1e6 * 100.0).round() / 100.0 } else { v };
                points.push((t, if v.is_nan() { 0.0 } else { v }));
                match t.checked_add(step) { Some(n) => t = n, None => break }
            }
            roundtrip(&points);
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
