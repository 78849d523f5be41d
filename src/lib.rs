//! Rotor — a real-time messaging server that speaks Centrifugo's client protocol
//! (v2, JSON) and server HTTP API, and makes the connections API its headline:
//! list and act on live connections by user, by CEL expression, or by a label
//! filter compiled to flat bytecode and surveyed over a per-core sharded hub.
//!
//! Module map (dependencies point downwards only):
//!
//! - [`json`] infallible JSON encoding of Rotor's own types;
//! - [`protocol`] wire types, JSON codec and code tables (no I/O);
//! - [`filter`] the FilterNode language: parse → IR → bytecode → VM, plus an oracle;
//! - [`config`] the configuration schema, defaults, loading and validation;
//! - [`auth`] JWT verification of connection and subscription tokens;
//! - [`hub`] live connections: per-core shards, label columns, user and channel indexes;
//! - [`engine`] broker, history and presence (the memory engine);
//! - [`node`] client sessions, command handling, fan-out;
//! - [`transport`] WebSocket and unidirectional transports;
//! - [`api`] the server HTTP API;
//! - [`grpc`] the gRPC server API (the same methods as [`api`], over protobuf);
//! - [`admin`] the admin web UI and its endpoints (embedded static files);
//! - [`cli`] the `rotor` command line (the only user of `anyhow`).

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod filter;
pub mod glob;
pub mod grpc;
pub mod hub;
pub mod json;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod transport;
