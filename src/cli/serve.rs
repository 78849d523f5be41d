//! `rotor [-c config.json]`: run the server with a loaded configuration (the HTTP
//! server, and the gRPC API alongside it when `grpc_api.enabled`; both stop at shutdown).

use anyhow::Context;

use crate::config::{Loaded, LogLevel};
use crate::node::Node;

pub fn run(loaded: Loaded) -> anyhow::Result<()> {
    init_logging(loaded.config.log.level);
    for key in &loaded.unknown_keys {
        tracing::warn!(key = %key, "unknown configuration key");
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting runtime")?;
    runtime.block_on(async move {
        let node = Node::start(loaded.config).await?;
        let listeners = crate::server::bind(&node).await.context("binding the HTTP port")?;
        if let Some(grpc) = crate::grpc::bind(&node).await.context("starting the gRPC API")? {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::grpc::serve(node, grpc).await {
                    tracing::error!(error = %e, "gRPC API server failed");
                }
            });
        }
        crate::server::serve(node, listeners).await.context("serving")
    })
}

/// Every connection is a file descriptor: lift the soft NOFILE limit to the hard one
/// so the node can hold as many connections as the system allows.
fn raise_nofile_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::debug!(error = %e, "could not raise the open files limit"),
    }
}

fn init_logging(level: LogLevel) {
    let filter = tracing_subscriber::EnvFilter::new(format!("rotor={},warn", level.directive()));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
