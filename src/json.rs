//! JSON encoding of Rotor's own values. Serializing into memory fails only for a
//! `Serialize` impl that fails or a map with non-string keys; Rotor's types have
//! neither (derived impls over strings, numbers, string-keyed maps and raw JSON), so
//! these helpers return the encoding rather than a `Result`. The argument is made
//! once, here, instead of an `expect` at every call site.

#![allow(clippy::expect_used, reason = "encoding Rotor's own types into memory cannot fail; see the module header")]

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// `value` as JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("Rotor's types encode as JSON")
}

/// Writes `value` as JSON to an in-memory writer (a `Vec`, a byte counter), which
/// never fails.
pub fn write<W: std::io::Write, T: Serialize + ?Sized>(writer: W, value: &T) {
    serde_json::to_writer(writer, value).expect("Rotor's types encode as JSON");
}

/// `value` as a JSON string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("Rotor's types encode as JSON")
}

/// `value` encoded once, to embed as is.
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("Rotor's types encode as JSON")
}

/// `value` as a JSON tree.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).expect("Rotor's types encode as JSON")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn encodes_what_serde_json_encodes() {
        let m: BTreeMap<&str, Vec<u32>> = [("a", vec![1, 2])].into();
        assert_eq!(to_vec(&m), br#"{"a":[1,2]}"#);
        let mut buf = b"x".to_vec();
        write(&mut buf, "s");
        assert_eq!(buf, br#"x"s""#);
        assert_eq!(to_raw(&true).get(), "true");
        assert_eq!(to_value(&m), serde_json::json!({"a": [1, 2]}));
    }
}
