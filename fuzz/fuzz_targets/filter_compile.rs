//! Property: arbitrary bytes decoded as a JSON `FilterNode`, then validated (`parse`)
//! and compiled (`compile`) under default, tight and maximal `Limits`, never panic;
//! `parse` and `compile` agree; a compiled tree is valid for the reference validator,
//! a tree rejected for anything but a size limit is invalid for it, and a compiled
//! program only jumps forward and agrees with `reference_matches`.
//! See `rotor_fuzz::filter_compile`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::filter_compile(data));
