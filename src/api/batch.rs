//! `batch`: `{"commands":[{"<method>":{…}},…],"parallel":bool}` →
//! `{"replies":[{"<method>":{…}} | {"error":{…}}]}` — top level, as `cent` reads it.
//! Commands run in order; `parallel` is accepted and gives the same replies (every
//! method here completes without waiting, so there is nothing to overlap).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::node::Node;

use super::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchRequest {
    pub commands: Vec<Value>,
    pub parallel: bool,
}

/// Most commands one batch may carry.
pub const MAX_COMMANDS: usize = 1000;

pub fn batch(node: &Node, req: BatchRequest) -> Result<Value, ApiError> {
    if req.commands.len() > MAX_COMMANDS {
        return Err(ApiError::bad_request(format!("batch of {} commands; at most {MAX_COMMANDS}", req.commands.len())));
    }
    let replies: Vec<Value> = req.commands.iter().map(|c| one(node, c)).collect();
    Ok(json!({ "replies": replies }))
}

fn one(node: &Node, command: &Value) -> Value {
    let Some(obj) = command.as_object() else {
        return error(ApiError::bad_request("command must be an object"));
    };
    let Some((name, params)) = obj.iter().find(|(k, _)| super::METHODS.contains(&k.as_str()) && *k != "batch") else {
        return error(ApiError::not_found());
    };
    let body = serde_json::to_vec(params).expect("re-encodes");
    match super::call(node, name, &body) {
        Ok(Ok(result)) => {
            let value: Value = serde_json::from_str(result.get()).expect("our own JSON");
            Value::Object(Map::from_iter([(name.clone(), value)]))
        }
        Ok(Err(e)) => error(e),
        Err(_) => error(ApiError::bad_request("invalid params")),
    }
}

fn error(e: ApiError) -> Value {
    json!({ "error": e })
}
