//! The plain HTTP listener, and the peer address both it and the HTTPS one
//! ([`crate::tls::HttpsListener`]) give each request (axum's connect info).

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream};

use crate::tls::HttpsListener;

/// The peer's address, as the listener reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, HttpsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HttpsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, PlainListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, PlainListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Plain HTTP: TCP connections with Nagle's algorithm off (see [`crate::tcp::no_delay`]).
pub struct PlainListener(pub TcpListener);

impl Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        let (mut tcp, addr) = Listener::accept(&mut self.0).await;
        crate::tcp::no_delay(&mut tcp);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
