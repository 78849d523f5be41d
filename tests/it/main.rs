//! The test binary: every integration test in one crate, so a clean `cargo test`
//! links one binary, not ten. The real `rotor` binary on a free port with real sockets
//! (`harness`), external tools and SDKs against it (`process`, `compat_env`), the
//! filter/CEL property tests, the fuzz targets' regressions, and the docs' checks.

// Tests fail loudly: unwrap and expect are how a test says "this must hold", and
// helpers shared between test modules are `pub` inside a private module tree.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod admin;
mod admin_browser;
mod api;
mod api_methods;
mod bad_input;
mod bench_tool;
mod capacity;
mod cel;
mod cluster;
mod compat_api;
mod compat_env;
mod compat_sdk;
mod connections;
mod emulation;
mod filter;
mod fuzz_regressions;
mod grpc;
mod hardening_io;
mod harness;
mod metrics;
mod openapi;
mod process;
mod protobuf;
mod proxy;
mod redis;
mod schemathesis;
mod seed;
mod sessions;
mod shutdown;
mod stream_wire;
mod tags_filter;
mod uni;
mod ws;
