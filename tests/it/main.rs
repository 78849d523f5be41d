//! Integration tests: the real `rotor` binary on a free port, real sockets.

mod admin;
mod admin_browser;
mod api;
mod api_methods;
mod bad_input;
mod cluster;
mod connections;
mod hardening_io;
mod harness;
mod metrics;
mod proxy;
mod redis;
mod seed;
mod shutdown;
mod tags_filter;
mod uni;
mod ws;
