//! Property: for a CEL expression from a small grammar over `labels.<k>`, `user`,
//! `==`, `!=`, `in [..]`, `has()`, `startsWith`/`endsWith`/`contains`, `&&`, `||`, `!`
//! (or raw source after a leading `#`), whenever `rotor::filter::cel::plan` translates
//! it to bytecode, the translated verdict equals `plan_interpreted` on every
//! connection. See `rotor_fuzz::cel_translate_vs_interp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rotor_fuzz::cel_translate_vs_interp(data));
