//! TCP options shared by the web and MQTT listeners, plain and TLS.

/// Small writes (a live reading, a PUBACK) go out at once rather than waiting, by Nagle's
/// rule, for the previous one to be acknowledged: up to the peer's 40 ms delayed ACK.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
}
