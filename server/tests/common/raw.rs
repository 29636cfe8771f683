//! A minimal MQTT 3.1.1 client over a plain socket: it sends exactly the bytes it is given
//! (so bad input reaches the broker as is) and reports exactly what came back.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A minimal MQTT 3.1.1 client that sends exactly the bytes it is given.
pub struct Raw {
    stream: TcpStream,
    next_id: u16,
    /// Messages the broker delivered (topic, payload) while the client waited for something
    /// else, oldest first.
    inbox: VecDeque<(String, Vec<u8>)>,
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
        Ok(Raw { stream, next_id: 1, inbox: VecDeque::new() })
    }

    /// Subscribes to one filter at QoS 1; answers the SUBACK's return code (0x80: refused).
    pub fn subscribe(&mut self, filter: &str) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let mut body = id.to_be_bytes().to_vec();
        string(filter.as_bytes(), &mut body);
        body.push(1);
        self.stream.write_all(&packet(0x82, &body)).unwrap();
        loop {
            let (first, body) = self.read_packet().expect("a SUBACK");
            if first & 0xF0 == 0x30 {
                self.received(first, &body);
                continue;
            }
            assert_eq!((first, body.len()), (0x90, 3), "a SUBACK");
            return body[2];
        }
    }

    /// Reads one whole packet: its first byte and the rest after the length.
    fn read_packet(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut first = [0u8; 1];
        self.stream.read_exact(&mut first)?;
        let (mut length, mut shift) = (0usize, 0);
        loop {
            let mut byte = [0u8; 1];
            self.stream.read_exact(&mut byte)?;
            length |= usize::from(byte[0] & 0x7F) << shift;
            shift += 7;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body)?;
        Ok((first[0], body))
    }

    /// Keeps a delivered PUBLISH (acknowledged if QoS 1) for [`Raw::next_message`].
    fn received(&mut self, first: u8, body: &[u8]) {
        let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let topic = String::from_utf8_lossy(&body[2..2 + topic_len]).into_owned();
        let mut rest = &body[2 + topic_len..];
        if first & 0x06 != 0 {
            let id = [rest[0], rest[1]];
            rest = &rest[2..];
            let _ = self.stream.write_all(&[0x40, 2, id[0], id[1]]);
        }
        self.inbox.push_back((topic, rest.to_vec()));
    }

    /// The next message the broker delivers to this client's subscriptions within `within`,
    /// if any (anything else it sends meanwhile is read and ignored).
    pub fn next_message(&mut self, within: Duration) -> Option<(String, Vec<u8>)> {
        let deadline = Instant::now() + within;
        while self.inbox.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.read_packet() {
                Ok((first, body)) if first & 0xF0 == 0x30 => self.received(first, &body),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        self.inbox.pop_front()
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
        loop {
            match self.read_packet() {
                // A message for this client's own subscriptions may come first.
                Ok((first, body)) if first & 0xF0 == 0x30 => self.received(first, &body),
                Ok((first, ack)) => {
                    assert_eq!((first, ack.len()), (0x40, 2), "a PUBACK");
                    assert_eq!(u16::from_be_bytes([ack[0], ack[1]]), id, "for this publish");
                    return Answer::PubAck;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Answer::Silence;
                }
                Err(_) => return Answer::Disconnected,
            }
        }
    }
}

/// A CONNECT (MQTT 3.1.1, clean session) built field by field, for what a well-behaved client
/// library would not send.
pub struct Connect<'a> {
    pub client_id: &'a [u8],
    /// User name and password.
    pub login: Option<(&'a str, &'a str)>,
    /// A user name without a password (when `login` is `None`).
    pub user: Option<&'a str>,
    /// Last will topic and message, sent at QoS 1 and retained.
    pub will: Option<(&'a str, &'a [u8])>,
    pub keep_alive: u16,
}

impl<'a> Connect<'a> {
    /// A plain CONNECT as `client_id`, keepalive 60 s.
    pub fn new(client_id: &'a str) -> Connect<'a> {
        Connect { client_id: client_id.as_bytes(), login: None, user: None, will: None, keep_alive: 60 }
    }

    /// The packet's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        let mut flags = 0x02;
        if self.will.is_some() {
            // Will flag, will QoS 1, will retain.
            flags |= 0x04 | (1 << 3) | 0x20;
        }
        if self.login.is_some() {
            flags |= 0xC0;
        } else if self.user.is_some() {
            flags |= 0x80;
        }
        body.extend_from_slice(&[4, flags]);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        string(self.client_id, &mut body);
        if let Some((topic, message)) = self.will {
            string(topic.as_bytes(), &mut body);
            string(message, &mut body);
        }
        if let Some((user, password)) = self.login {
            string(user.as_bytes(), &mut body);
            string(password.as_bytes(), &mut body);
        } else if let Some(user) = self.user {
            string(user.as_bytes(), &mut body);
        }
        packet(0x10, &body)
    }
}

/// Why a CONNECT did not make a connection.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// A CONNACK with this return code (5: not authorised, 4: bad user name or password,
    /// 2: identifier rejected).
    Code(u8),
    /// The broker closed the connection without a CONNACK.
    Closed,
    /// No answer within the read timeout.
    Silence,
}

impl Raw {
    /// Sends `connect`; answers the connection if the broker accepted it.
    pub fn try_connect_with(addr: SocketAddr, connect: &Connect) -> Result<Raw, Refused> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("reach the broker");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if stream.write_all(&connect.bytes()).is_err() {
            return Err(Refused::Closed);
        }
        let mut connack = [0u8; 4];
        match stream.read_exact(&mut connack) {
            Ok(()) if connack == [0x20, 2, 0, 0] => Ok(Raw { stream, next_id: 1, inbox: VecDeque::new() }),
            Ok(()) => {
                assert_eq!(connack[..2], [0x20, 2], "a CONNACK");
                Err(Refused::Code(connack[3]))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(Refused::Silence)
            }
            Err(_) => Err(Refused::Closed),
        }
    }

    /// Whether the broker ends this connection within `within` (anything it sends meanwhile
    /// is read and ignored).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        let mut buf = [0u8; 256];
        let closed = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
                Err(_) => break true,
            }
        };
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        closed
    }

    /// Sends DISCONNECT (a clean end), closes its side as a client does, and waits for the
    /// broker to close the connection.
    pub fn disconnect(mut self) {
        self.stream.write_all(&[0xE0, 0]).unwrap();
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(self.closed_within(Duration::from_secs(5)), "the broker ends the connection");
    }

    /// Sets how long [`Raw::publish`] waits for its answer.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }
}
