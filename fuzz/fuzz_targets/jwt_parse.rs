//! Property: `rotor::auth::Verifier` never panics on any token string, verifies a
//! connection or subscription token only when it is genuinely HMAC-signed with a key
//! trusted for that kind, accepts exactly the acceptable claims when they are signed
//! with such a key (`sign_hs256`), and rejects every tampered token.
//! See `rotor_fuzz::jwt_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::jwt_parse(data));
