//! Property: server API calls (`rotor::api::call` with a method picked from
//! `rotor::api::METHODS` and an arbitrary body) on a node with live connections never
//! panic, and `connections` selects exactly what the reference evaluator or the CEL
//! interpreter selects. See `rotor_fuzz::api_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::api_request(data));
