//! Property: the streaming transports' request judge (`rotor::server::stream::judge`)
//! never panics on the start of a connection, takes a request only when all of it has
//! arrived and fits the bounds, and what it takes parses into an `http` request with
//! the announced body. See `rotor_fuzz::stream_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::stream_request(data));
