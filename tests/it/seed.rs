//! The seed's flow end to end with Rotor's commands: `rotor genconfig`,
//! `rotor gentoken -u 42`, the server with uni_http_stream enabled through the
//! environment, two `uni_http_stream` connections named `terminal`, a publish.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness::*;

fn rotor(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rotor")).args(args).current_dir(dir).output().unwrap()
}

#[tokio::test]
async fn genconfig_gentoken_two_terminals_and_publish() {
    let dir = temp_dir("seed");
    let out = rotor(&dir, &["genconfig"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = rotor(&dir, &["gentoken", "-u", "42"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "HMAC SHA-256 JWT for user 42 with expiration TTL 168h0m0s:");
    let token = lines.next().unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3);

    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let api_key = config["http_api"]["key"].as_str().unwrap().to_string();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(["-c", "config.json"])
        .current_dir(&dir)
        .env("ROTOR_UNI_HTTP_STREAM_ENABLED", "true")
        .env("ROTOR_HTTP_SERVER_PORT", port.to_string())
        .env("ROTOR_HTTP_SERVER_ADDRESS", "127.0.0.1")
        .env("ROTOR_CHANNEL_WITHOUT_NAMESPACE_ALLOW_SUBSCRIBE_FOR_CLIENT", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_health(&base).await;

    let body = json!({"token": token, "name": "terminal", "subs": {"news": {}}});
    let mut t1 = open_stream(&base, &body).await;
    let mut t2 = open_stream(&base, &body).await;
    let c1 = t1.next().await.unwrap();
    let c2 = t2.next().await.unwrap();
    assert_ne!(c1["connect"]["client"], c2["connect"]["client"]);

    let r = reqwest::Client::new()
        .post(format!("{base}/api/publish"))
        .header("Authorization", format!("apikey {api_key}"))
        .body(json!({"channel": "news", "data": {"hello": "terminal"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for t in [&mut t1, &mut t2] {
        assert_eq!(t.next_push().await.unwrap()["pub"]["data"], json!({"hello": "terminal"}));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn wait_health(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if reqwest::get(format!("{base}/health")).await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

async fn open_stream(base: &str, body: &Value) -> UniStream {
    UniStream::open_url(&format!("{base}/connection/uni_http_stream"), body).await
}
