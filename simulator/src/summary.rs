//! `--summary FILE`: every device's commands and desired state as JSON, rewritten (whole, by
//! rename) within half a second of a change and on SIGINT or SIGTERM, so a test reads how often
//! each device executed, repeated or ignored commands even after killing the simulator.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use simulator::commands::Device;

/// Each device's id and commands.
pub type Devices = Vec<(String, Arc<Mutex<Device>>)>;

/// `{"devices":[{"device":…,"interval_s":…,"desired_v":…,"stats":{…},"reexecuted_ids":[…]}]}`.
fn render(devices: &Devices) -> String {
    let lines: Vec<_> = devices.iter().map(|(id, d)| d.lock().expect("not poisoned").summary(id)).collect();
    json!({ "devices": lines }).to_string()
}

pub fn write(path: &Path, devices: &Devices) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(devices))?;
    std::fs::rename(&tmp, path)
}

/// Rewrites the file whenever it would change, until the process ends.
pub async fn keep_written(path: PathBuf, devices: Devices) {
    let mut last = String::new();
    loop {
        let now = render(&devices);
        if now != last {
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, &now).and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot write the summary");
            }
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
