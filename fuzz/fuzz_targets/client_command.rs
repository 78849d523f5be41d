//! Property: arbitrary bytes through `rotor::protocol::codec::decode_frame` and each
//! command's `into_method` never panic; driven through a live `Conn` on a fresh node,
//! they never panic either and every queued reply or push is one line of JSON.
//! See `rotor_fuzz::client_command`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::client_command(data));
