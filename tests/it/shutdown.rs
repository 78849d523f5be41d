//! Graceful shutdown: SIGTERM disconnects every client with reconnect-able 3001.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn sigterm_disconnects_everyone_with_3001() {
    let mut s = Server::start(json!({})).await;
    let (mut ws, _) = Ws::connect(&s, &token("1", json!({}))).await;
    let mut uni = UniStream::open(&s, json!({"token": token("2", json!({}))})).await;
    assert!(uni.next().await.unwrap().get("connect").is_some());
    let status = s.terminate();
    assert!(status.success(), "rotor should exit cleanly: {status:?}");
    assert_eq!(ws.closed().await, Closed::Code(3001, "shutdown".into()));
    assert_eq!(uni.next().await.unwrap(), json!({"disconnect": {"code": 3001, "reason": "shutdown"}}));
    assert!(uni.next().await.is_none());
}
