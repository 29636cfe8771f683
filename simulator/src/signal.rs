//! Realistic sensor signals for a simulated ESP32: temperature on a daily sine with noise,
//! humidity moving against it, and a battery that discharges from 4.2 V towards 3.3 V, then
//! charges back.

use std::f64::consts::TAU;

use chrono::{DateTime, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BATTERY_FULL: f64 = 4.2;
pub const BATTERY_EMPTY: f64 = 3.3;

pub struct Sensor {
    rng: StdRng,
    /// This device's offset from the typical room (°C / % RH).
    temp_offset: f64,
    humidity_offset: f64,
    battery: f64,
    charging: bool,
    /// Volts lost per reading while discharging.
    drain: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub temperature: f64,
    pub humidity: f64,
    pub battery: f64,
}

impl Sensor {
    /// A sensor whose signals are fixed by `seed` (one per device).
    pub fn new(seed: u64) -> Sensor {
        let mut rng = StdRng::seed_from_u64(seed);
        Sensor {
            temp_offset: rng.random_range(-2.0..2.0),
            humidity_offset: rng.random_range(-8.0..8.0),
            battery: rng.random_range(3.7..BATTERY_FULL),
            charging: false,
            drain: rng.random_range(0.0004..0.0012),
            rng,
        }
    }

    fn noise(&mut self, amplitude: f64) -> f64 {
        // Sum of uniforms: cheap, bell-shaped.
        (self.rng.random::<f64>() + self.rng.random::<f64>() - 1.0) * amplitude
    }

    /// The reading at time `t`.
    pub fn read(&mut self, t: DateTime<Utc>) -> Reading {
        let hour = f64::from(t.hour()) + f64::from(t.minute()) / 60.0 + f64::from(t.second()) / 3600.0;
        // Warmest mid-afternoon, coolest before dawn.
        let daily = (TAU * (hour - 9.0) / 24.0).sin();
        let temperature = 21.0 + self.temp_offset + 4.0 * daily + self.noise(0.3);
        let humidity = (55.0 + self.humidity_offset - 2.5 * (temperature - 21.0 - self.temp_offset)
            + self.noise(1.0))
        .clamp(5.0, 100.0);
        if self.charging {
            self.battery += 0.01;
            if self.battery >= BATTERY_FULL {
                self.battery = BATTERY_FULL;
                self.charging = false;
            }
        } else {
            self.battery -= self.drain;
            if self.battery <= BATTERY_EMPTY {
                self.battery = BATTERY_EMPTY;
                self.charging = true;
            }
        }
        let battery = (self.battery + self.noise(0.005)).clamp(3.0, 4.3);
        Reading {
            temperature: round(temperature, 2),
            humidity: round(humidity, 1),
            battery: round(battery, 3),
        }
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn temperature_follows_the_day_and_humidity_opposes_it() {
        let mut s = Sensor::new(7);
        let day = |h| Utc.with_ymd_and_hms(2025, 12, 19, h, 0, 0).unwrap();
        let avg = |s: &mut Sensor, h| {
            (0..50)
                .map(|_| s.read(day(h)))
                .fold((0.0, 0.0), |a, r| (a.0 + r.temperature / 50.0, a.1 + r.humidity / 50.0))
        };
        let (warm, dry) = avg(&mut s, 15);
        let (cool, damp) = avg(&mut s, 3);
        assert!(warm - cool > 6.0, "afternoon {warm} vs night {cool}");
        assert!(damp > dry, "humidity {damp} at night vs {dry} in the afternoon");
        assert!((10.0..35.0).contains(&warm) && (5.0..=100.0).contains(&dry));
    }

    #[test]
    fn battery_discharges_then_recharges_within_limits() {
        let mut s = Sensor::new(1);
        let t = Utc.with_ymd_and_hms(2025, 12, 19, 12, 0, 0).unwrap();
        let volts: Vec<f64> = (0..5000).map(|_| s.read(t).battery).collect();
        assert!(volts.iter().all(|v| (3.25..=4.25).contains(v)));
        let low = volts.iter().position(|v| *v < 3.35).expect("reaches empty");
        assert!(volts[low..].iter().any(|v| *v > 4.1), "recharges after reaching empty");
        assert!(volts[0] > volts[low]);
    }

    #[test]
    fn devices_differ() {
        let t = Utc.with_ymd_and_hms(2025, 12, 19, 12, 0, 0).unwrap();
        assert_ne!(Sensor::new(1).read(t), Sensor::new(2).read(t));
    }
}
