//! A device's connection log: each MQTT connection to the embedded broker with when it began
//! and ended, why it ended, where it came from and its protocol version; refused sign-ins too.
//! A store keeps the latest [`MAX_LOGGED`] per device; [`availability`] is worked out from them.
//! (With an external broker there is no log: the server sees only what devices publish.)

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Connections a store keeps per device (the oldest go first).
pub const MAX_LOGGED: usize = 100;

/// Longest address kept, in bytes (`[v6 address%scope]:port` fits).
pub const MAX_ADDRESS: usize = 64;

/// The first [`MAX_ADDRESS`] bytes of `address` (cut at a character boundary).
pub fn bounded_address(address: &str) -> String {
    let mut end = address.len().min(MAX_ADDRESS);
    while !address.is_char_boundary(end) {
        end -= 1;
    }
    address[..end].to_owned()
}

/// The windows availability is shown over: 24 h and 7 days, in milliseconds.
pub const WINDOWS: [(&str, Millis); 2] = [("24 h", 86_400_000), ("7 d", 7 * 86_400_000)];

/// Why a connection ended (or was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The device sent DISCONNECT.
    Clean,
    /// Nothing from the device within its keepalive (one and a half times it).
    KeepaliveTimeout,
    /// The connection closed without a DISCONNECT (power lost, network gone, a reset).
    RemoteClose,
    /// Reading or writing the connection failed.
    ConnectionError,
    /// Ended by the server: the device's key was replaced or revoked, or sign-in became required.
    Kicked,
    /// A new connection with the same client id took its place.
    TakenOver,
    /// The device broke the protocol (or sent a packet over the size limit).
    ProtocolError,
    /// A publish the server could not take ended it (not stored, or not the device's to send).
    PublishRefused,
    /// Its sign-in was refused (no key, a wrong key, another device's id): it never connected.
    AuthFailure,
    /// The server stopped (or was killed) while it was connected.
    ServerStopped,
    Other,
}

impl Ended {
    /// What a person reads.
    pub fn text(self) -> &'static str {
        match self {
            Ended::Clean => "clean disconnect",
            Ended::KeepaliveTimeout => "keepalive timeout",
            Ended::RemoteClose => "closed without disconnecting",
            Ended::ConnectionError => "connection error",
            Ended::Kicked => "ended by the server",
            Ended::TakenOver => "replaced by a new connection",
            Ended::ProtocolError => "protocol error",
            Ended::PublishRefused => "a publish was refused",
            Ended::AuthFailure => "sign-in refused",
            Ended::ServerStopped => "server stopped",
            Ended::Other => "other",
        }
    }

    /// The name in the API (`keepalive_timeout`, …).
    pub fn label(self) -> &'static str {
        match self {
            Ended::Clean => "clean",
            Ended::KeepaliveTimeout => "keepalive_timeout",
            Ended::RemoteClose => "remote_close",
            Ended::ConnectionError => "connection_error",
            Ended::Kicked => "kicked",
            Ended::TakenOver => "taken_over",
            Ended::ProtocolError => "protocol_error",
            Ended::PublishRefused => "publish_refused",
            Ended::AuthFailure => "auth_failure",
            Ended::ServerStopped => "server_stopped",
            Ended::Other => "other",
        }
    }
}

/// One connection, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Server time it was made (or refused).
    pub connected_at: Millis,
    /// Server time it ended; `None` while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Ended>,
    /// The client's address (`ip:port`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5.
    pub protocol: u8,
}

impl Connection {
    /// How long it lasted (so far, at `now`).
    pub fn duration(&self, now: Millis) -> Millis {
        self.ended_at.unwrap_or(now).saturating_sub(self.connected_at).max(0)
    }

    /// "3.1", "3.1.1", "5".
    pub fn protocol_name(&self) -> String {
        match self.protocol {
            3 => "3.1".into(),
            4 => "3.1.1".into(),
            n => n.to_string(),
        }
    }

    /// A refused sign-in: a moment, never a connection.
    pub fn refused(&self) -> bool {
        self.reason == Some(Ended::AuthFailure)
    }
}

/// The share of `[from, to]` the device was connected, over the part the log covers (from its
/// oldest connection on: before that the device was not logged, so not counted either way).
/// `None` when the log has nothing in that window.
pub fn availability(log: &[Connection], from: Millis, to: Millis) -> Option<f64> {
    let oldest = log.iter().map(|c| c.connected_at).min()?;
    let start = from.max(oldest);
    if start >= to {
        return None;
    }
    // Connections may overlap (a new one before the old one is noticed gone): merge them.
    let mut spans: Vec<(Millis, Millis)> = log
        .iter()
        .map(|c| (c.connected_at.max(start), c.ended_at.unwrap_or(to).min(to)))
        .filter(|(a, b)| b > a)
        .collect();
    spans.sort_unstable();
    let (mut up, mut reach) = (0, start);
    for (a, b) in spans {
        let a = a.max(reach);
        if b > a {
            up += b - a;
            reach = b;
        }
    }
    Some(up as f64 / (to - start) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn conn(from: Millis, to: Option<Millis>) -> Connection {
        let reason = to.map(|_| Ended::Clean);
        Connection { connected_at: from, ended_at: to, reason, address: None, protocol: 4 }
    }

    #[test]
    fn availability_is_the_connected_share_of_what_the_log_covers() {
        let now = 100 * H;
        assert_eq!(availability(&[], now - 24 * H, now), None);
        // Connected all day but for two hours.
        let day = [conn(now - 30 * H, Some(now - 10 * H)), conn(now - 8 * H, None)];
        assert_eq!(availability(&day, now - 24 * H, now), Some(22.0 / 24.0));
        // Logged only for the last 12 h: the share of those.
        let half = [conn(now - 12 * H, Some(now - 6 * H))];
        assert_eq!(availability(&half, now - 24 * H, now), Some(0.5));
        // Overlapping connections count once.
        let both = [conn(now - 24 * H, None), conn(now - 2 * H, None)];
        assert_eq!(availability(&both, now - 24 * H, now), Some(1.0));
        // A refused sign-in is a moment, not time connected.
        let mut refused = conn(now - 4 * H, Some(now - 4 * H));
        refused.reason = Some(Ended::AuthFailure);
        assert!(refused.refused());
        assert_eq!(availability(&[refused], now - 24 * H, now), Some(0.0));
    }

    #[test]
    fn availability_counts_only_the_window_and_open_connections_up_to_its_end() {
        let (from, to) = (100 * H, 124 * H);
        // Began before the window, ended inside it: only the part inside counts.
        let early = [conn(from - 10 * H, Some(from + 6 * H)), conn(from + 12 * H, Some(to))];
        assert_eq!(availability(&early, from, to), Some(18.0 / 24.0));
        // Open, from before the window: connected all of it; one still open ends at `to`.
        assert_eq!(availability(&[conn(from - H, None)], from, to), Some(1.0));
        assert_eq!(availability(&[conn(from - H, Some(from))], from, to), Some(0.0), "ended at the edge");
        assert_eq!(availability(&[conn(to - 6 * H, None)], from, to), Some(1.0), "logged for 6 h, all up");
        // Newer than the window (a clock ahead, or a window in the past): nothing to say.
        assert_eq!(availability(&[conn(to, None)], from, to), None);
        assert_eq!(availability(&[conn(to + H, Some(to + 2 * H))], from, to), None);
        // A connection inside another, and one overlapping its end, count once.
        let nested = [
            conn(from, Some(from + 10 * H)),
            conn(from + 2 * H, Some(from + 3 * H)),
            conn(from + 9 * H, Some(from + 14 * H)),
        ];
        assert_eq!(availability(&nested, from, to), Some(14.0 / 24.0));
        // Order in the log does not matter (stores keep it newest first).
        let mut reversed = nested;
        reversed.reverse();
        assert_eq!(availability(&reversed, from, to), Some(14.0 / 24.0));
    }

    #[test]
    fn addresses_are_cut_to_the_bound_at_a_character_boundary() {
        assert_eq!(bounded_address("10.0.0.7:5100"), "10.0.0.7:5100");
        assert_eq!(bounded_address(&"a".repeat(200)).len(), MAX_ADDRESS);
        let wide = "é".repeat(40);
        let cut = bounded_address(&wide);
        assert!(cut.len() <= MAX_ADDRESS && wide.starts_with(&cut) && cut.len() == 64);
    }

    #[test]
    fn reasons_read_and_travel_by_name() {
        assert_eq!(serde_json::to_string(&Ended::KeepaliveTimeout).unwrap(), r#""keepalive_timeout""#);
        assert_eq!(Ended::KeepaliveTimeout.label(), "keepalive_timeout");
        assert_eq!(Ended::Clean.text(), "clean disconnect");
        let c = conn(1_000, Some(61_000));
        assert_eq!((c.duration(0), c.protocol_name()), (60_000, "3.1.1".to_owned()));
        assert_eq!(conn(1_000, None).duration(11_000), 10_000);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"connected_at":1000,"ended_at":61000,"reason":"clean","protocol":4}"#);
        assert_eq!(serde_json::from_str::<Connection>(&json).unwrap(), c);
    }
}
