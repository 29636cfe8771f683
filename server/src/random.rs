//! Random tokens and ids from the operating system's generator.

use argon2::password_hash::rand_core::{OsRng, RngCore};

/// `n` random bytes as lower-case hex: session tokens, keys, setup tokens.
pub fn hex(n: usize) -> String {
    use std::fmt::Write;
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(2 * n), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `n` random characters of `0-9a-z`: short ids.
pub fn base36(n: usize) -> String {
    (0..n).map(|_| char::from_digit(OsRng.next_u32() % 36, 36).expect("a base-36 digit")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes_and_freshness() {
        assert_eq!(super::hex(16).len(), 32);
        assert_ne!(super::hex(16), super::hex(16));
        let id = super::base36(6);
        assert!(id.len() == 6 && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    }
}
