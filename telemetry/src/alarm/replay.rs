//! A backtest's core: stored readings replayed, device by device, through the state machine
//! the server runs live ([`super::eval`]), with the clock ticking between readings as the
//! server's does (every [`TICK_MS`]); what it opens, moves and clears is counted like the
//! engine counts it ([`crate::notify::told`]). Pure: the server only reads history and feeds
//! it here.
//!
//! A replay differs from the live run in what history cannot say: a reading counts as arriving
//! at its own time (nothing is late or a backfill), no device status is stored (an offline
//! rule sees a device go stale, never its last will), there are no restarts (no start grace),
//! nobody acknowledges, clears or shelves, and a device is followed from its first reading in
//! the window.
//!
//! Ticking every second through a quiet week would cost a week of seconds per device, and is
//! not needed: what a tick does only ever becomes due with time (a pending period ends, a
//! device has been quiet long enough, flapping has calmed down), so within a stretch without
//! readings the first tick that does anything is found by bisection, exactly where a tick
//! every second would have found it.

use super::eval::{self, Clock, Effect, Input, Track};
use super::{Backtest, Episode, MAX_BACKTEST_EPISODES, Rule};
use crate::Millis;
use crate::notify::told;

/// The live engine's tick (the server's `alarms::TICK`).
pub const TICK_MS: Millis = 1000;

/// A replay of one rule over `[from, to]`.
pub struct Replay<'r> {
    rule: &'r Rule,
    out: Backtest,
    device: Option<Device>,
    /// How long after its latest reading a device counts as gone (offline rules).
    stale_after: Millis,
    /// Their expected interval, if known (overdue rules).
    interval: Option<Millis>,
    /// Tests compare bisection with ticking every second.
    #[cfg(test)]
    every_tick: bool,
}

/// The device being replayed.
struct Device {
    id: String,
    track: Track,
    /// Time of the latest reading replayed.
    last: Millis,
    /// The alarm open now, as an episode.
    open: Option<Episode>,
    /// Whether the alarm is marked flapping (as the engine marks the alarm record).
    flapping: bool,
}

impl<'r> Replay<'r> {
    pub fn new(rule: &'r Rule, from: Millis, to: Millis) -> Replay<'r> {
        Replay {
            rule,
            out: Backtest {
                from,
                to,
                devices: 0,
                readings: 0,
                opened: 0,
                notifications: 0,
                episodes: Vec::new(),
                limited: None,
            },
            device: None,
            stale_after: crate::device::DEFAULT_STALE_MS,
            interval: None,
            #[cfg(test)]
            every_tick: false,
        }
    }

    /// How long after its latest reading the devices replayed next count as gone without
    /// saying so ([`crate::device::Interval::stale_after`]; a minute unless told).
    pub fn stale_after(&mut self, stale_after: Millis) {
        self.stale_after = stale_after;
    }

    /// The expected interval of the devices replayed next, if known (overdue rules).
    pub fn interval(&mut self, interval: Option<Millis>) {
        self.interval = interval;
    }

    /// Readings replayed so far.
    pub fn readings(&self) -> u64 {
        self.out.readings
    }

    /// Starts replaying `device` (the one before ends at the window's end).
    pub fn device(&mut self, device: &str) {
        self.end_device();
        self.out.devices = self.out.devices.saturating_add(1);
        self.device = Some(Device {
            id: device.to_owned(),
            track: Track::default(),
            last: Millis::MIN,
            open: None,
            flapping: false,
        });
    }

    /// A reading of the current device at `ts`, after those before it (an older or repeated
    /// time is ignored, as live). Readings outside the window are ignored too.
    pub fn reading(&mut self, ts: Millis, values: &[(String, f64)]) {
        let Some(last) = self.device.as_ref().map(|d| d.last) else { return };
        if ts <= last || ts < self.out.from || ts > self.out.to {
            return;
        }
        if last != Millis::MIN {
            self.quiet(last, ts);
        }
        self.out.readings = self.out.readings.saturating_add(1);
        let input = Input::Reading { values, ts, received: ts };
        self.step(input, ts);
        if let Some(d) = self.device.as_mut() {
            d.last = ts;
        }
    }

    /// Says why the answer covers less than was asked (devices or readings left out).
    pub fn limited(&mut self, why: String) {
        self.out.limited = Some(why);
    }

    /// The backtest: the last device run to the window's end, episodes newest last.
    pub fn finish(mut self) -> Backtest {
        self.end_device();
        self.trim_episodes();
        self.out
    }

    fn end_device(&mut self) {
        let Some(last) = self.device.as_ref().map(|d| d.last) else { return };
        if last != Millis::MIN {
            self.quiet(last, self.out.to.saturating_add(1));
        }
        if let Some(open) = self.device.take().and_then(|d| d.open) {
            self.episode(open);
        }
    }

    /// The clock ticks through `(after, before)`, where no reading came: every [`TICK_MS`]
    /// from `after`, but evaluated only where a tick does something.
    fn quiet(&mut self, after: Millis, before: Millis) {
        let ticks = before.saturating_sub(after).saturating_sub(1) / TICK_MS;
        let at = |k: Millis| after.saturating_add(k.saturating_mul(TICK_MS));
        let mut k = 1;
        #[cfg(test)]
        if self.every_tick {
            for k in 1..=ticks {
                let now = at(k);
                self.step(self.tick(), now);
            }
            return;
        }
        while k <= ticks {
            let Some(d) = self.device.as_ref() else { return };
            // Nothing happens by the stretch's last tick: nothing happens in it.
            let mut probe = d.track.clone();
            if self.probe(&mut probe, at(ticks)) {
                if let Some(d) = self.device.as_mut() {
                    d.track = probe;
                }
                return;
            }
            let (mut lo, mut hi) = (k, ticks);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let mut probe = d.track.clone();
                if self.probe(&mut probe, at(mid)) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            self.step(self.tick(), at(lo));
            k = lo + 1;
        }
    }

    /// Whether a tick at `now` leaves `track` without effects.
    fn probe(&self, track: &mut Track, now: Millis) -> bool {
        let input = self.tick();
        eval::evaluate(self.rule, track, input, Clock { now, quiet_until: 0 }).is_empty()
    }

    /// The clock's input: the device's presence is its latest reading (no statuses are stored).
    fn tick(&self) -> Input<'static> {
        let last_seen = self.device.as_ref().map_or(0, |d| d.last.max(0));
        Input::Tick { last_seen, offline_since: None, stale_after: self.stale_after, interval: self.interval }
    }

    /// Evaluates `input` at `now` and counts what it did.
    fn step(&mut self, input: Input, now: Millis) {
        let Some(d) = self.device.as_mut() else { return };
        let effects = eval::evaluate(self.rule, &mut d.track, input, Clock { now, quiet_until: 0 });
        let mut done = Vec::new();
        for effect in effects {
            let kind = effect.kind();
            match effect {
                Effect::Open { severity, value, .. } => {
                    // As the engine does: the alarm takes the track's flapping, and the track
                    // names its alarm (which a breach within the flap window reopens).
                    d.track.alarm.get_or_insert_with(|| "replayed".to_owned());
                    d.flapping = d.track.flapping;
                    self.out.opened = self.out.opened.saturating_add(1);
                    done.extend(d.open.take());
                    d.open = Some(Episode {
                        device: d.id.clone(),
                        severity,
                        fired_at: now,
                        cleared_at: None,
                        value,
                    });
                }
                Effect::Severity { to, .. } => {
                    if let Some(open) = d.open.as_mut() {
                        open.severity = open.severity.max(to);
                    }
                }
                Effect::Clear { .. } => {
                    if let Some(mut open) = d.open.take() {
                        open.cleared_at = Some(now);
                        done.push(open);
                    }
                }
                Effect::Flapping => d.flapping = true,
                Effect::Stable => d.flapping = false,
            }
            if told(kind, d.flapping) {
                self.out.notifications = self.out.notifications.saturating_add(1);
            }
        }
        for episode in done {
            self.episode(episode);
        }
    }

    /// Lists an episode; only the newest [`MAX_BACKTEST_EPISODES`] are kept.
    fn episode(&mut self, episode: Episode) {
        self.out.episodes.push(episode);
        if self.out.episodes.len() >= 2 * MAX_BACKTEST_EPISODES {
            self.trim_episodes();
        }
    }

    fn trim_episodes(&mut self) {
        let episodes = &mut self.out.episodes;
        episodes.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then_with(|| a.device.cmp(&b.device)));
        let extra = episodes.len().saturating_sub(MAX_BACKTEST_EPISODES);
        episodes.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::alarm::Severity;

    const S: Millis = 1000;
    const T0: Millis = 1_766_146_880_000;

    fn rule(json: serde_json::Value) -> Rule {
        let mut base = serde_json::json!({"name": "r"});
        base.as_object_mut().unwrap().extend(json.as_object().unwrap().clone());
        let r: Rule = serde_json::from_value(base).unwrap();
        r.validate().unwrap();
        r
    }

    fn hot(for_secs: u64, clear_for_secs: u64) -> Rule {
        rule(serde_json::json!({"kind": "threshold", "metric": "t", "op": ">",
            "levels": [{"severity": "major", "value": 30}, {"severity": "critical", "value": 40}],
            "clear": 28, "for_secs": for_secs, "clear_for_secs": clear_for_secs}))
    }

    /// Replays one device's readings `(seconds after T0, value)` over `[T0, T0 + until s]`.
    fn replay(rule: &Rule, readings: &[(i64, f64)], until: i64, every_tick: bool) -> Backtest {
        let mut r = Replay::new(rule, T0, T0 + until * S);
        r.every_tick = every_tick;
        r.device("d1");
        for (at, v) in readings {
            r.reading(T0 + at * S, &[("t".to_owned(), *v)]);
        }
        r.finish()
    }

    #[test]
    fn a_pending_period_ends_between_readings_as_it_does_live() {
        // Readings every 5 minutes: fires 60 s after the first breach, on the clock.
        let r = hot(60, 0);
        let b = replay(&r, &[(0, 20.0), (300, 31.0), (600, 31.0), (900, 20.0)], 1200, false);
        assert_eq!((b.opened, b.notifications, b.readings, b.devices), (1, 2, 4, 1));
        assert_eq!(
            b.episodes,
            [Episode {
                device: "d1".into(),
                severity: Severity::Major,
                fired_at: T0 + 360 * S,
                cleared_at: Some(T0 + 900 * S),
                value: Some(31.0),
            }]
        );
    }

    #[test]
    fn an_episode_keeps_its_highest_severity_and_one_still_open_has_no_end() {
        let r = hot(0, 0);
        let b = replay(&r, &[(0, 31.0), (10, 45.0), (20, 31.0)], 100, false);
        assert_eq!(b.episodes.len(), 1);
        assert_eq!((b.episodes[0].severity, b.episodes[0].cleared_at), (Severity::Critical, None));
        // fired, escalated, de-escalated
        assert_eq!((b.opened, b.notifications), (1, 3));
    }

    #[test]
    fn a_flapping_series_opens_many_times_and_notifies_little() {
        let r = hot(0, 0);
        let readings: Vec<_> = (0..60).map(|i| (i * 30, if i % 2 == 0 { 31.0 } else { 25.0 })).collect();
        let b = replay(&r, &readings, 3600, false);
        assert_eq!(b.opened, 30, "each crossing opens it (again)");
        assert_eq!(b.episodes.len(), 30);
        // Fired, cleared, then flapping (the second opening): quiet until it is stable, which
        // it becomes 30 minutes after its last change, within the hour.
        assert_eq!(b.notifications, 4, "fired, cleared, flapping, stable");
    }

    #[test]
    fn a_no_data_rule_fires_in_a_gap_and_clears_on_the_next_reading() {
        let r = rule(serde_json::json!({"kind": "no_data", "metric": "t", "after_secs": 600}));
        let b = replay(&r, &[(0, 1.0), (60, 1.0), (3600, 1.0)], 4000, false);
        assert_eq!(b.episodes.len(), 1);
        assert_eq!((b.episodes[0].fired_at, b.episodes[0].cleared_at), (T0 + 660 * S, Some(T0 + 3600 * S)));
        // Quiet again from 3600 s: a second alarm at 4200 s, open at the end.
        let b = replay(&r, &[(0, 1.0), (3600, 1.0)], 7200, false);
        assert_eq!(b.opened, 2);
        assert_eq!(b.episodes[1].cleared_at, None);
    }

    #[test]
    fn only_the_newest_episodes_are_listed_but_all_are_counted() {
        let r = hot(0, 0);
        let mut replay = Replay::new(&r, T0, T0 + 100_000 * S);
        for device in ["a", "b"] {
            replay.device(device);
            for i in 0..400 {
                replay.reading(T0 + i * 100 * S, &[("t".to_owned(), 31.0)]);
                replay.reading(T0 + (i * 100 + 1) * S, &[("t".to_owned(), 20.0)]);
            }
        }
        let b = replay.finish();
        assert_eq!((b.opened, b.devices, b.readings), (800, 2, 1600));
        assert_eq!(b.episodes.len(), MAX_BACKTEST_EPISODES);
        assert!(b.episodes.windows(2).all(|w| w[0].fired_at <= w[1].fired_at), "newest last");
        assert_eq!(b.episodes.last().unwrap().fired_at, T0 + 39_900 * S);
    }

    fn rules() -> impl Strategy<Value = Rule> {
        prop_oneof![
            (0u64..120, 0u64..60, 0u32..4, 60u64..900).prop_map(|(f, c, m, w)| {
                let mut r = hot(f, c);
                r.min_samples = m;
                r.flap_window_secs = w;
                r
            }),
            (1u64..300).prop_map(|a| rule(serde_json::json!({"kind": "no_data", "after_secs": a}))),
            (1u64..300).prop_map(|a| rule(serde_json::json!({"kind": "offline", "after_secs": a}))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Bisection finds what a tick every second finds, for any rule and any series with
        /// gaps of any length.
        #[test]
        fn bisection_is_the_same_as_ticking_every_second(
            rule in rules(),
            steps in prop::collection::vec((1i64..400, 20.0f64..45.0), 1..60),
        ) {
            let mut at = 0;
            let readings: Vec<(i64, f64)> = steps.iter().map(|(gap, v)| { at += gap; (at, *v) }).collect();
            let until = at + 1000;
            prop_assert_eq!(replay(&rule, &readings, until, false), replay(&rule, &readings, until, true));
        }
    }
}
