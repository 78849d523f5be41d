//! Property: for a `FilterNode` and label sets built from the input over a small
//! alphabet (numeric-looking values, empty strings, prefixes of each other), whenever
//! the tree compiles, the bytecode VM in string mode (`Program::matches_map`), the
//! interned VM, and the hub's columnar survey all give exactly
//! `rotor::filter::reference_matches`. See `rotor_fuzz::filter_vm_vs_reference`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::filter_vm_vs_reference(data));
