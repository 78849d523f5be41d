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

/// Text that already is one JSON value, handed to serde_json unchanged. This is how
/// serde_json's own `RawValue` serializes (a struct under its private token name,
/// recognised by its serializers); a unit test guards the behaviour, so a serde_json
/// that stopped honouring it fails the build's tests instead of the API.
pub struct Verbatim<'a>(pub &'a str);

impl Serialize for Verbatim<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        const TOKEN: &str = "$serde_json::private::RawValue";
        let mut st = ser.serialize_struct(TOKEN, 1)?;
        st.serialize_field(TOKEN, self.0)?;
        st.end()
    }
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

    /// Guards [`Verbatim`]: serde_json must splice the text unchanged, into a string,
    /// a raw value and a `Value` alike.
    #[test]
    fn verbatim_is_spliced_unchanged() {
        let v = Verbatim(r#"{"a":[1,"x"]}"#);
        assert_eq!(serde_json::to_string(&[&v, &v]).unwrap(), r#"[{"a":[1,"x"]},{"a":[1,"x"]}]"#);
        assert_eq!(serde_json::value::to_raw_value(&v).unwrap().get(), r#"{"a":[1,"x"]}"#);
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!({"a": [1, "x"]}));
    }
}
