//! The bridge between protobuf messages and the HTTP API's JSON: a request serializes
//! to exactly the body `POST /api/<method>` takes, and the JSON result the HTTP API
//! answers deserializes into the protobuf result (derives added by `build.rs`).
//!
//! Binary fields hold JSON documents, as they do for Centrifugo with JSON clients:
//! on the way in their bytes are spliced into the body as raw JSON (a publication's
//! `data` reaches JSON subscribers byte for byte), on the way out the raw JSON text of
//! `data`, `info`, `meta` becomes the bytes.

use serde::de::{Deserializer, Error as _};
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::proto::{Command, FilterNode};

/// Serializes binary field bytes as the raw JSON they hold; bytes that are not one
/// JSON document fail the request's serialization (a 107 to the caller).
pub fn ser_json_bytes<S: Serializer>(bytes: &[u8], ser: S) -> Result<S::Ok, S::Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| S::Error::custom("binary field is not UTF-8 JSON"))?;
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|e| S::Error::custom(format!("binary field is not JSON: {e}")))?;
    raw.serialize(ser)
}

/// Deserializes a JSON value of a result into its raw text as bytes (`null` and
/// absent are empty).
pub fn de_json_bytes<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<u8>, D::Error> {
    let raw: Box<RawValue> = Deserialize::deserialize(de).map_err(D::Error::custom)?;
    Ok(if raw.get() == "null" { Vec::new() } else { raw.get().as_bytes().to_vec() })
}

/// Whether `bytes` hold exactly one JSON document.
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<&RawValue>(bytes).is_ok()
}

/// A FilterNode as the HTTP API's `label_filter` object: empty fields are left out,
/// as a JSON caller would write it.
impl Serialize for FilterNode {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        // Empty and absent are one thing in protobuf, and the filter reads them alike.
        for (k, v) in [("op", &self.op), ("key", &self.key), ("cmp", &self.cmp), ("val", &self.val)] {
            if !v.is_empty() {
                m.serialize_entry(k, v)?;
            }
        }
        if !self.vals.is_empty() {
            m.serialize_entry("vals", &self.vals)?;
        }
        if !self.nodes.is_empty() {
            m.serialize_entry("nodes", &self.nodes)?;
        }
        m.end()
    }
}

/// A batch command as `{"<method>": {…}}` with only the set methods (the batch
/// runner takes the first method it knows).
impl Serialize for Command {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        macro_rules! entry {
            ($($field:ident),*) => {
                $(if let Some(v) = &self.$field {
                    m.serialize_entry(stringify!($field), v)?;
                })*
            };
        }
        entry!(
            publish,
            broadcast,
            subscribe,
            unsubscribe,
            disconnect,
            presence,
            presence_stats,
            history,
            history_remove,
            info,
            rpc,
            refresh,
            channels,
            connections,
            update_user_status,
            get_user_status,
            delete_user_status,
            block_user,
            unblock_user,
            revoke_token,
            invalidate_user_tokens
        );
        m.end()
    }
}
