//! Property: for a CEL expression over `meta` and arithmetic (from a list, or raw
//! source after a leading `#`) and arbitrary `meta` text, Rotor's native evaluator
//! either gives the cel crate's verdict or says it is unsure. See
//! `rotor_fuzz::cel_native_vs_crate`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::cel_native_vs_crate(data));
