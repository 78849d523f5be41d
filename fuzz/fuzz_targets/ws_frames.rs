//! Property: arbitrary client bytes through the WebSocket frame reader
//! (`rotor::transport::ws_frame::Reader`) never panic, read the same whole or split into
//! reads, and only pass messages a server may hand on. See `rotor_fuzz::ws_frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::ws_frames(data));
