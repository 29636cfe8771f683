//! What the benchmarks store: simulated devices' readings, as ingest hands them to storage.

use std::path::Path;
use std::time::{Duration, Instant};

use server::store::Incoming;
use simulator::signal::Sensor;
use telemetry::{DeviceId, Message, Millis};

/// 2025-01-01T00:00:00Z.
pub const START: Millis = 1_735_689_600_000;

/// One device's reading each second, `metrics` of temperature, humidity and battery.
pub struct Device {
    id: DeviceId,
    sensor: Sensor,
    metrics: usize,
}

impl Device {
    pub fn new(n: u64, metrics: usize) -> Device {
        Device {
            id: DeviceId::try_from(format!("esp32-{n:04}")).expect("a valid id"),
            sensor: Sensor::new(n),
            metrics,
        }
    }

    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    pub fn reading(&mut self, ts: Millis) -> Incoming {
        let r = self.sensor.read(chrono::DateTime::from_timestamp_millis(ts).expect("a valid time"));
        let values = [("temperature", r.temperature), ("humidity", r.humidity), ("battery", r.battery)];
        Incoming {
            message: Message::new(self.id.clone(), ts, values[..self.metrics].iter().copied()),
            received: ts,
        }
    }
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Median time of `runs` runs of `f`, after two warm-up runs, and the last run's result.
pub fn median_time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    f();
    f();
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let out = std::hint::black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    times.sort();
    (times[times.len() / 2], last.expect("at least one run"))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
