//! A minimal MQTT 3.1.1 client over a plain socket: it sends exactly the bytes it is given
//! (so bad input reaches the broker as is) and reports exactly what came back.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A minimal MQTT 3.1.1 client that sends exactly the bytes it is given.
pub struct Raw {
    stream: TcpStream,
    next_id: u16,
}

/// What the broker answered a publish with.
#[derive(Debug, PartialEq)]
pub enum Answer {
    PubAck,
    /// The connection closed (or broke) instead.
    Disconnected,
    /// Nothing within the read timeout.
    Silence,
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

impl Raw {
    /// Connects with a clean session; panics unless the broker accepts.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Raw {
        Raw::try_connect(addr, client_id).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects with a clean session, or says why not (refused, unreachable, no answer).
    pub fn try_connect(addr: SocketAddr, client_id: &str) -> std::io::Result<Raw> {
        Raw::try_connect_as(addr, client_id, None)
    }

    /// Connects with a user name and password; a refusal's error holds the CONNACK bytes.
    pub fn try_connect_as(
        addr: SocketAddr,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> std::io::Result<Raw> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        let flags = if login.is_some() { 0xC2 } else { 0x02 };
        body.extend_from_slice(&[4, flags, 0, 60]);
        string(client_id.as_bytes(), &mut body);
        if let Some((user, password)) = login {
            string(user.as_bytes(), &mut body);
            string(password.as_bytes(), &mut body);
        }
        stream.write_all(&packet(0x10, &body))?;
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack)?;
        if connack != [0x20, 2, 0, 0] {
            return Err(std::io::Error::other(format!("CONNACK {connack:?}")));
        }
        Ok(Raw { stream, next_id: 1 })
    }

    /// Subscribes to one filter at QoS 1; answers the SUBACK's return code (0x80: refused).
    pub fn subscribe(&mut self, filter: &str) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let mut body = id.to_be_bytes().to_vec();
        string(filter.as_bytes(), &mut body);
        body.push(1);
        self.stream.write_all(&packet(0x82, &body)).unwrap();
        let mut ack = [0u8; 5];
        self.stream.read_exact(&mut ack).unwrap();
        assert_eq!(ack[..2], [0x90, 3], "a SUBACK");
        ack[4]
    }

    /// Publishes at QoS 1 and waits for the answer.
    pub fn publish(&mut self, topic: &[u8], payload: &[u8]) -> Answer {
        let id = self.next_id;
        // Packet ids run 1..=65535 and wrap (0 is not one).
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let mut body = Vec::new();
        string(topic, &mut body);
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(payload);
        if self.stream.write_all(&packet(0x32, &body)).is_err() {
            return Answer::Disconnected;
        }
        let mut ack = [0u8; 4];
        match self.stream.read_exact(&mut ack) {
            Ok(()) => {
                assert_eq!(ack[..2], [0x40, 2], "a PUBACK");
                assert_eq!(u16::from_be_bytes([ack[2], ack[3]]), id, "for this publish");
                Answer::PubAck
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Answer::Silence,
            Err(_) => Answer::Disconnected,
        }
    }
}
