//! `batch`: `{"commands":[{"<method>":{…}},…],"parallel":bool}` →
//! `{"replies":[{"<method>":{…}} | {"error":{…}}]}` — top level, as `cent` reads it.
//! Commands run in order; `parallel` is accepted and gives the same replies.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::sync::Arc;

use crate::node::Node;

use super::Encoded;
use super::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BatchRequest {
    pub commands: Vec<Value>,
    pub parallel: bool,
}

/// Most commands one batch may carry.
pub(super) const MAX_COMMANDS: usize = 1000;

#[derive(Debug, Serialize)]
pub(super) struct BatchResult {
    pub replies: Vec<Reply>,
}

/// One reply: `{"<method>": <result>}` or `{"error": {…}}`. A result stays the encoded
/// JSON the method produced: decoding it again could fail, since results embed client
/// data (publications in `history`) nested deeper than serde_json parses.
#[derive(Debug)]
pub(super) enum Reply {
    Result(String, Encoded),
    Error(ApiError),
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(1))?;
        match self {
            Reply::Result(name, result) => m.serialize_entry(name, result)?,
            Reply::Error(e) => m.serialize_entry("error", e)?,
        }
        m.end()
    }
}

pub(super) async fn batch(node: &Arc<Node>, req: BatchRequest) -> Result<BatchResult, ApiError> {
    if req.commands.len() > MAX_COMMANDS {
        return Err(ApiError::bad_request(format!("batch of {} commands; at most {MAX_COMMANDS}", req.commands.len())));
    }
    let mut replies = Vec::with_capacity(req.commands.len());
    for c in &req.commands {
        replies.push(one(node, c).await);
    }
    Ok(BatchResult { replies })
}

async fn one(node: &Arc<Node>, command: &Value) -> Reply {
    let Some(obj) = command.as_object() else {
        return Reply::Error(ApiError::bad_request("command must be an object"));
    };
    let Some((name, params)) = obj.iter().find(|(k, _)| super::METHODS.contains(&k.as_str()) && *k != "batch") else {
        return Reply::Error(ApiError::not_found());
    };
    let body = crate::json::to_vec(params);
    match super::call(node, name, &body).await {
        Ok(Ok(result)) => Reply::Result(name.clone(), result),
        Ok(Err(e)) => Reply::Error(e),
        Err(_) => Reply::Error(ApiError::bad_request("invalid params")),
    }
}
