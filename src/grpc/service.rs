//! `CentrifugoApi`: each method serializes its request to the HTTP API's JSON body,
//! runs it through [`crate::api::call`] — the one implementation both APIs share,
//! fleet-wide answers and survey scheduling included — and reads the JSON result back
//! into the protobuf result (see `json.rs`). `Connections`, whose answers are large,
//! takes the API's unencoded rows instead ([`crate::api::list_connections`]) and builds
//! protobuf from them (`listing.rs`). Errors go in the response's `error` field
//! like Centrifugo, or as gRPC statuses in transport error mode (`grpc_api.error_mode:
//! transport`, or the `x-centrifugo-error-mode: transport` metadata of one call).

use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Code, Request, Response, Status};

use crate::api::{self, ApiError, Undecodable};
use crate::node::Node;
use crate::protocol::ErrorCode;

use super::json::is_json;
use super::listing;
use super::proto::centrifugo_api_server::CentrifugoApi;
use super::proto::*;

pub(super) struct Api {
    node: Arc<Node>,
    transport_errors: bool,
}

impl Api {
    pub(super) fn new(node: Arc<Node>) -> Api {
        let transport_errors = node.config.grpc_api.error_mode == crate::config::ErrorMode::Transport;
        Api { node, transport_errors }
    }

    fn transport_mode<T>(&self, req: &Request<T>) -> bool {
        self.transport_errors
            || req
                .metadata()
                .get("x-centrifugo-error-mode")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"transport"))
    }

    /// Runs `method` with the request's JSON body: the result, or the logical error
    /// (as a status in transport mode).
    async fn run<Req: Serialize, Res: DeserializeOwned>(
        &self,
        method: &str,
        req: Request<Req>,
    ) -> Result<(Option<Res>, Option<Error>), Status> {
        let transport = self.transport_mode(&req);
        split(transport, self.call(method, req.get_ref()).await?)
    }

    async fn call<Req: Serialize, Res: DeserializeOwned>(
        &self,
        method: &str,
        req: &Req,
    ) -> Result<Result<Res, ApiError>, Status> {
        let body = match json_body(req) {
            Ok(body) => body,
            Err(e) => return Ok(Err(e)),
        };
        match api::call(&self.node, method, &body).await {
            Err(Undecodable(why)) => Err(Status::invalid_argument(why)),
            Ok(Err(e)) => Ok(Err(e)),
            Ok(Ok(encoded)) => serde_json::from_str(encoded.get())
                .map(Ok)
                .map_err(|e| Status::internal(format!("encoding the {method} result: {e}"))),
        }
    }
}

/// The HTTP API's JSON body of a request; a request that cannot be one (binary
/// fields that are not JSON) is a bad request.
fn json_body<Req: Serialize>(req: &Req) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(req).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A method's result, or its logical error in the response's `error` field — or as a
/// status in transport mode.
fn split<T>(transport: bool, outcome: Result<T, ApiError>) -> Result<(Option<T>, Option<Error>), Status> {
    match outcome {
        Ok(result) => Ok((Some(result), None)),
        Err(e) if transport => Err(status_of(&e)),
        Err(e) => Ok((None, Some(Error { code: e.code.code(), message: e.message }))),
    }
}

/// The gRPC status of an API error in transport mode (Centrifugo's table).
pub fn status_of(e: &ApiError) -> Status {
    let code = match e.code {
        ErrorCode::UnknownChannel | ErrorCode::MethodNotFound => Code::NotFound,
        ErrorCode::BadRequest | ErrorCode::NotAvailable => Code::InvalidArgument,
        ErrorCode::UnrecoverablePosition => Code::OutOfRange,
        ErrorCode::Conflict => Code::AlreadyExists,
        ErrorCode::Internal
        | ErrorCode::Unauthorized
        | ErrorCode::PermissionDenied
        | ErrorCode::AlreadySubscribed
        | ErrorCode::LimitExceeded
        | ErrorCode::TokenExpired
        | ErrorCode::Expired
        | ErrorCode::TooManyRequests => Code::Internal,
    };
    Status::new(code, e.message.clone())
}

/// Publication bytes that are not JSON travel as `b64data`, which the publish path
/// judges (JSON clients cannot receive them).
fn binary_data(data: &mut Vec<u8>, b64data: &mut String) {
    if !data.is_empty() && !is_json(data) {
        *b64data = base64::engine::general_purpose::STANDARD.encode(&*data);
        data.clear();
    }
}

fn prepare_command(c: &mut Command) {
    if let Some(p) = &mut c.publish {
        binary_data(&mut p.data, &mut p.b64data);
    }
    if let Some(b) = &mut c.broadcast {
        binary_data(&mut b.data, &mut b.b64data);
    }
}

/// ConnectionInfo's `ping_pong_latency_ms` is -1 when not known (Rotor does not
/// measure it).
fn unknown_latency(r: &mut ConnectionsResult) {
    for c in r.connections.values_mut() {
        c.ping_pong_latency_ms = -1;
    }
}

#[tonic::async_trait]
impl CentrifugoApi for Api {
    async fn batch(&self, mut req: Request<BatchRequest>) -> Result<Response<BatchResponse>, Status> {
        req.get_mut().commands.iter_mut().for_each(prepare_command);
        match self.call::<_, BatchResponse>("batch", req.get_ref()).await? {
            Ok(mut r) => {
                r.replies.iter_mut().filter_map(|r| r.connections.as_mut()).for_each(unknown_latency);
                Ok(Response::new(r))
            }
            Err(e) => Err(status_of(&e)),
        }
    }

    async fn publish(&self, mut req: Request<PublishRequest>) -> Result<Response<PublishResponse>, Status> {
        let p = req.get_mut();
        binary_data(&mut p.data, &mut p.b64data);
        let (result, error) = self.run("publish", req).await?;
        Ok(Response::new(PublishResponse { error, result }))
    }

    async fn broadcast(&self, mut req: Request<BroadcastRequest>) -> Result<Response<BroadcastResponse>, Status> {
        let b = req.get_mut();
        binary_data(&mut b.data, &mut b.b64data);
        let (result, error) = self.run("broadcast", req).await?;
        Ok(Response::new(BroadcastResponse { error, result }))
    }

    async fn subscribe(&self, req: Request<SubscribeRequest>) -> Result<Response<SubscribeResponse>, Status> {
        let (result, error) = self.run("subscribe", req).await?;
        Ok(Response::new(SubscribeResponse { error, result }))
    }

    async fn unsubscribe(&self, req: Request<UnsubscribeRequest>) -> Result<Response<UnsubscribeResponse>, Status> {
        let (result, error) = self.run("unsubscribe", req).await?;
        Ok(Response::new(UnsubscribeResponse { error, result }))
    }

    async fn disconnect(&self, req: Request<DisconnectRequest>) -> Result<Response<DisconnectResponse>, Status> {
        let (result, error) = self.run("disconnect", req).await?;
        Ok(Response::new(DisconnectResponse { error, result }))
    }

    async fn presence(&self, req: Request<PresenceRequest>) -> Result<Response<PresenceResponse>, Status> {
        let (result, error) = self.run("presence", req).await?;
        Ok(Response::new(PresenceResponse { error, result }))
    }

    async fn presence_stats(
        &self,
        req: Request<PresenceStatsRequest>,
    ) -> Result<Response<PresenceStatsResponse>, Status> {
        let (result, error) = self.run("presence_stats", req).await?;
        Ok(Response::new(PresenceStatsResponse { error, result }))
    }

    async fn history(&self, req: Request<HistoryRequest>) -> Result<Response<HistoryResponse>, Status> {
        let (result, error) = self.run("history", req).await?;
        Ok(Response::new(HistoryResponse { error, result }))
    }

    async fn history_remove(
        &self,
        req: Request<HistoryRemoveRequest>,
    ) -> Result<Response<HistoryRemoveResponse>, Status> {
        let (result, error) = self.run("history_remove", req).await?;
        Ok(Response::new(HistoryRemoveResponse { error, result }))
    }

    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let (result, error) = self.run("info", req).await?;
        Ok(Response::new(InfoResponse { error, result }))
    }

    async fn rpc(&self, req: Request<RpcRequest>) -> Result<Response<RpcResponse>, Status> {
        let (result, error) = self.run("rpc", req).await?;
        Ok(Response::new(RpcResponse { error, result }))
    }

    async fn refresh(&self, req: Request<RefreshRequest>) -> Result<Response<RefreshResponse>, Status> {
        let (result, error) = self.run("refresh", req).await?;
        Ok(Response::new(RefreshResponse { error, result }))
    }

    async fn channels(&self, req: Request<ChannelsRequest>) -> Result<Response<ChannelsResponse>, Status> {
        let (result, error) = self.run("channels", req).await?;
        Ok(Response::new(ChannelsResponse { error, result }))
    }

    async fn connections(&self, req: Request<ConnectionsRequest>) -> Result<Response<ConnectionsResponse>, Status> {
        let transport = self.transport_mode(&req);
        let outcome = match json_body(req.get_ref()) {
            Ok(body) => match api::list_connections(&self.node, &body).await {
                Err(Undecodable(why)) => return Err(Status::invalid_argument(why)),
                Ok(outcome) => outcome,
            },
            Err(e) => Err(e),
        };
        let outcome = match outcome {
            Ok(listing) => Ok(listing::result(listing)?),
            Err(e) => Err(e),
        };
        let (result, error) = split(transport, outcome)?;
        Ok(Response::new(ConnectionsResponse { error, result }))
    }

    async fn update_user_status(
        &self,
        req: Request<UpdateUserStatusRequest>,
    ) -> Result<Response<UpdateUserStatusResponse>, Status> {
        let (result, error) = self.run("update_user_status", req).await?;
        Ok(Response::new(UpdateUserStatusResponse { error, result }))
    }

    async fn get_user_status(
        &self,
        req: Request<GetUserStatusRequest>,
    ) -> Result<Response<GetUserStatusResponse>, Status> {
        let (result, error) = self.run("get_user_status", req).await?;
        Ok(Response::new(GetUserStatusResponse { error, result }))
    }

    async fn delete_user_status(
        &self,
        req: Request<DeleteUserStatusRequest>,
    ) -> Result<Response<DeleteUserStatusResponse>, Status> {
        let (result, error) = self.run("delete_user_status", req).await?;
        Ok(Response::new(DeleteUserStatusResponse { error, result }))
    }

    async fn block_user(&self, req: Request<BlockUserRequest>) -> Result<Response<BlockUserResponse>, Status> {
        let (result, error) = self.run("block_user", req).await?;
        Ok(Response::new(BlockUserResponse { error, result }))
    }

    async fn unblock_user(&self, req: Request<UnblockUserRequest>) -> Result<Response<UnblockUserResponse>, Status> {
        let (result, error) = self.run("unblock_user", req).await?;
        Ok(Response::new(UnblockUserResponse { error, result }))
    }

    async fn revoke_token(&self, req: Request<RevokeTokenRequest>) -> Result<Response<RevokeTokenResponse>, Status> {
        let (result, error) = self.run("revoke_token", req).await?;
        Ok(Response::new(RevokeTokenResponse { error, result }))
    }

    async fn invalidate_user_tokens(
        &self,
        req: Request<InvalidateUserTokensRequest>,
    ) -> Result<Response<InvalidateUserTokensResponse>, Status> {
        let (result, error) = self.run("invalidate_user_tokens", req).await?;
        Ok(Response::new(InvalidateUserTokensResponse { error, result }))
    }
}
