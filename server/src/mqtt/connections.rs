//! What the embedded broker tells each device's connection log: a connection made, ended (with
//! rmqtt's reason put in our words) or refused at sign-in. Reports go through the ingest door's
//! queue like statuses, so the writer commits them in order with the device's readings, many
//! to a commit; the broker never waits for their commit (a connection is not held up by its
//! log). Only devices the ingest door knows are reported (anyone may connect to an open broker
//! with any client id), and the store logs only devices it knows.
//!
//! A connection is numbered by the time rmqtt took its CONNECT (in milliseconds, kept unique);
//! those a stop or a crash left open are ended as the server starts
//! ([`crate::store::Store::end_connections`]).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rmqtt::session::Session;
use rmqtt::types::{ConnectInfo, Reason};
use telemetry::connections::Ended;
use telemetry::{DeviceId, Millis};

use crate::ingest::Ingest;
use crate::store::{ConnectionChange, ConnectionReport, Report};

/// Why rmqtt ended a connection, as the log says it.
pub fn ended(reason: &Reason) -> Ended {
    match reason {
        Reason::ConnectDisconnect(_) => Ended::Clean,
        Reason::ConnectKeepaliveTimeout => Ended::KeepaliveTimeout,
        Reason::ConnectRemoteClose => Ended::RemoteClose,
        Reason::ConnectReadWriteError | Reason::ConnectReadWriteTimeout => Ended::ConnectionError,
        // The server's own kicks are an admin's (rights ended); a new connection with the same
        // client id kicks the old one as a client.
        Reason::ConnectKicked(true) => Ended::Kicked,
        Reason::ConnectKicked(false) => Ended::TakenOver,
        Reason::PublishResult(_) | Reason::DelayedPublishRefused => Ended::PublishRefused,
        Reason::ProtocolError(_) | Reason::MqttError(_) => Ended::ProtocolError,
        // rmqtt lists every reason it noted, the cause first.
        Reason::Reasons(all) => all.first().map_or(Ended::Other, ended),
        _ => Ended::Other,
    }
}

/// Where a session keeps its [`Entry`].
const ENTRY: &str = "iot-connection";

/// A connection's place in the log, kept with its session.
struct Entry {
    number: Millis,
    /// Whether its beginning was reported: not while its client id was no known device.
    logged: AtomicBool,
}

/// Connection numbers: the time a connection came, or just after the last number given when
/// connections come quicker than one a millisecond. They only grow, so two connections of a
/// device in one millisecond are still two entries.
#[derive(Default)]
struct Numbers {
    last: AtomicI64,
}

impl Numbers {
    fn next(&self, at: Millis) -> Millis {
        let next = |last: Millis| Some(at.max(last.saturating_add(1)));
        let last = self.last.fetch_update(Ordering::Relaxed, Ordering::Relaxed, next).unwrap_or(at);
        next(last).unwrap_or(at)
    }
}

/// The broker's side of the connection log.
pub struct ConnectionLog {
    ingest: Ingest,
    numbers: Numbers,
}

impl ConnectionLog {
    pub fn new(ingest: Ingest) -> ConnectionLog {
        ConnectionLog { ingest, numbers: Numbers::default() }
    }

    fn number(&self, at: Millis) -> Millis {
        self.numbers.next(at)
    }

    /// The device a client id names, if the ingest door knows it.
    fn known(&self, client: &str) -> Option<DeviceId> {
        DeviceId::try_from(client).ok().filter(|_| self.ingest.limits().knows(client))
    }

    async fn send(&self, report: ConnectionReport) {
        // Nobody waits for the commit: a failed one loses a log entry, never a reading.
        drop(self.ingest.submit_report(Report::Connection(report)).await);
    }

    /// A connection was accepted (after its CONNACK): numbered, and logged for a known device.
    pub async fn connected(&self, session: &Session) {
        let number = self.number(session.id.create_time);
        let device = self.known(&session.id.client_id);
        let entry = Entry { number, logged: AtomicBool::new(device.is_some()) };
        session.extra_attrs.write().await.insert(ENTRY.into(), entry);
        if let Some(device) = device {
            self.began(session, device, number).await;
        }
    }

    /// A publish on a connection was stored: a new device's first connection is logged once
    /// the device is known (it was not when it connected).
    pub async fn published(&self, session: &Session) {
        let number = {
            let attrs = session.extra_attrs.read().await;
            match attrs.get::<Entry>(ENTRY) {
                Some(entry) if !entry.logged.load(Ordering::Relaxed) => entry.number,
                _ => return,
            }
        };
        let Some(device) = self.known(&session.id.client_id) else { return };
        let attrs = session.extra_attrs.read().await;
        if attrs.get::<Entry>(ENTRY).is_some_and(|e| !e.logged.swap(true, Ordering::Relaxed)) {
            drop(attrs);
            self.began(session, device, number).await;
        }
    }

    async fn began(&self, session: &Session, device: DeviceId, number: Millis) {
        let protocol = session.connect_info().await.map_or(0, |c| c.proto_ver());
        let address = session.id.remote_addr.map(|a| a.to_string());
        let change = ConnectionChange::Connected { address, protocol };
        self.send(ConnectionReport { device, id: number, at: number, change }).await;
    }

    /// A connection ended, for `reason`.
    pub async fn disconnected(&self, session: &Session, reason: &Reason) {
        // Known by now if it published (a device's first connection is logged whole as it ends).
        let Some(device) = self.known(&session.id.client_id) else { return };
        let number = session.extra_attrs.read().await.get::<Entry>(ENTRY).map(|e| e.number);
        let id = number.unwrap_or(session.id.create_time);
        let protocol = session.connect_info().await.map_or(0, |c| c.proto_ver());
        let address = session.id.remote_addr.map(|a| a.to_string());
        let change = ConnectionChange::Ended { address, protocol, reason: ended(reason) };
        self.send(ConnectionReport { device, id, at: crate::clock::now_ms(), change }).await;
    }

    /// A CONNECT as a known device was refused at sign-in (no key, a wrong one, another's
    /// id, a will on another topic).
    pub async fn refused(&self, info: &ConnectInfo) {
        let Some(device) = self.known(info.client_id()) else { return };
        let address = info.id().remote_addr.map(|a| a.to_string());
        let change = ConnectionChange::Refused { address, protocol: info.proto_ver() };
        let id = self.number(info.id().create_time);
        self.send(ConnectionReport { device, id, at: id, change }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmqtt_s_reasons_read_as_ours_the_cause_first() {
        assert_eq!(ended(&Reason::ConnectDisconnect(None)), Ended::Clean);
        assert_eq!(ended(&Reason::ConnectKeepaliveTimeout), Ended::KeepaliveTimeout);
        assert_eq!(ended(&Reason::ConnectRemoteClose), Ended::RemoteClose);
        assert_eq!(ended(&Reason::ConnectKicked(true)), Ended::Kicked);
        assert_eq!(ended(&Reason::ConnectKicked(false)), Ended::TakenOver);
        let noted = Reason::Reasons(vec![Reason::ConnectKeepaliveTimeout, Reason::ConnectRemoteClose]);
        assert_eq!(ended(&noted), Ended::KeepaliveTimeout);
        assert_eq!(ended(&Reason::Reasons(Vec::new())), Ended::Other);
        assert_eq!(ended(&Reason::SessionExpiration), Ended::Other);
    }

    #[test]
    fn connections_in_one_millisecond_get_numbers_of_their_own() {
        let numbers = Numbers::default();
        assert_eq!([numbers.next(1_000), numbers.next(1_000), numbers.next(1_000)], [1_000, 1_001, 1_002]);
        assert_eq!(numbers.next(5_000), 5_000, "later ones keep their time");
        assert_eq!(numbers.next(4_000), 5_001, "never back");
    }
}
