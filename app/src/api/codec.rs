//! The encoding server function answers travel in: JSON, read as text.
//!
//! Leptos hydrates a page's resources with `serde_json::from_str`, and its stock JSON encoding
//! decodes answers with `from_slice`. serde_json builds every type's decoder once per reader,
//! so the two together put two copies of each decoder into the WASM. Reading answers as text
//! too leaves one.

use leptos::server_fn::codec::{JsonEncoding, Post};
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON in the body of a POST, as the stock [`JsonEncoding`]; answers are decoded from text.
pub struct JsonTextEncoding;

/// The `output` of every server function (and the encoding of its errors).
pub type JsonText = Post<JsonTextEncoding>;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = JsonEncoding::CONTENT_TYPE;
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

/// Encoding is the stock JSON encoding's.
impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = <JsonEncoding as Encodes<T>>::Error;

    fn encode(value: &T) -> Result<Bytes, Self::Error> {
        JsonEncoding::encode(value)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = String;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("the answer is not UTF-8: {e}"))?;
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let value = (vec![1.5_f64, -2.0], Some("é".to_owned()), Err::<u8, String>("no".into()));
        let bytes = <JsonTextEncoding as Encodes<_>>::encode(&value).unwrap();
        let back: (Vec<f64>, Option<String>, Result<u8, String>) = JsonTextEncoding::decode(bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_garbled_answer_is_an_error_not_a_panic() {
        let not_utf8 = Bytes::from_static(&[b'"', 0xff, b'"']);
        let err = <JsonTextEncoding as Decodes<String>>::decode(not_utf8).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let not_json = Bytes::from_static(b"{\"a\":");
        assert!(<JsonTextEncoding as Decodes<String>>::decode(not_json).is_err());
    }
}
