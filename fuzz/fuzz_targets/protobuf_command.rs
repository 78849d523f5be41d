//! Property: arbitrary bytes through `rotor::protocol::pb::decode_frame` never panic,
//! and driven through a live protobuf `Conn` on a fresh node they never panic either
//! and every queued message is one length-prefixed Reply.
//! See `rotor_fuzz::protobuf_command`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::protobuf_command(data));
