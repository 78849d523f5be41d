//! The code generated at build time from `proto/rotor_api.proto` (package
//! `centrifugal.centrifugo.api`): messages, the `CentrifugoApi` server trait and a
//! client (used by `rotor bench --api grpc` and the tests).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("centrifugal.centrifugo.api");

/// The encoded descriptor set of the proto, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rotor_api_descriptor.bin"));
