//! A large database for the start-up figure: `bench fill PATH MB` stores readings of 1,000
//! series whose values do not compress (random floats, 8–9 bytes each) until the file holds
//! MB megabytes, sealed as the server leaves them, then prints what it wrote.

use std::path::Path;
use std::time::Instant;

use server::store::{Incoming, RedbStore, Store};
use telemetry::{DeviceId, Message};

use crate::data::{START, file_size};

const DEVICES: usize = 100;
const METRICS: usize = 10;

pub fn run(path: &Path, megabytes: u64) {
    let ids: Vec<DeviceId> =
        (0..DEVICES).map(|n| DeviceId::try_from(format!("fill-{n:03}")).expect("a valid id")).collect();
    let names: Vec<String> = (0..METRICS).map(|m| format!("m{m}")).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64 * 1_000.0
    };
    let started = Instant::now();
    let (mut second, mut readings) = (0i64, 0u64);
    // Closing the store gives back the space it had reserved ahead: fill until the closed file
    // is big enough.
    while file_size(path) < megabytes << 20 {
        let store = RedbStore::open(path).expect("the store opens");
        while file_size(path) < megabytes << 20 {
            let mut batch = Vec::with_capacity(DEVICES * 60);
            for _ in 0..60 {
                let ts = START + second * 1_000;
                second += 1;
                for id in &ids {
                    let message = Message::new(id.clone(), ts, names.iter().map(|n| (n.as_str(), random())));
                    batch.push(Incoming { message, received: ts });
                }
            }
            readings += (batch.len() * METRICS) as u64;
            store.commit(&batch, &[]).expect("commit");
            store.seal(START + second * 1_000).expect("seal");
            store.trim_changes(10_000).expect("trim");
        }
    }
    println!(
        "filled {} with {readings} readings: {} MB in {:.0} s",
        path.display(),
        file_size(path) >> 20,
        started.elapsed().as_secs_f64()
    );
}
