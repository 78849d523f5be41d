use std::collections::HashMap;

use super::*;

fn cfg() -> config::Proxy {
    let mut c = config::Proxy { http_headers: vec!["Authorization".into(), "X-Real".into()], ..Default::default() };
    c.emulated_headers = vec!["x-emu".into(), "authorization".into()];
    c.http.static_headers.insert("x-static".into(), "s".into());
    c.http.static_headers.insert("x-real".into(), "static-loses".into());
    c
}

#[test]
fn transport_beats_emulated_beats_static_and_others_never_pass() {
    let h = Headers {
        transport: vec![("authorization".into(), "transport".into()), ("cookie".into(), "secret".into())],
        emulated: vec![("authorization".into(), "emulated".into()), ("x-emu".into(), "e".into())],
    };
    let out = outgoing_headers(&cfg(), &h);
    assert_eq!(out["authorization"], "transport");
    assert_eq!(out["x-emu"], "e");
    assert_eq!(out["x-static"], "s");
    assert_eq!(out["x-real"], "static-loses");
    assert_eq!(out["content-type"], "application/json");
    assert!(out.get("cookie").is_none());
}

#[test]
fn capture_keeps_only_wanted_headers() {
    let mut c = Config::default();
    c.client.proxy.connect = config::ClientProxy { enabled: true, proxy: cfg() };
    c.client.proxy.connect.proxy.endpoint = "http://127.0.0.1:1/".into();
    let p = Proxies::new(&c);
    let mut hm = HeaderMap::new();
    hm.insert("authorization", "a".parse().unwrap());
    hm.insert("cookie", "c".parse().unwrap());
    assert_eq!(p.capture(&hm), vec![("authorization".to_string(), "a".to_string())]);
    let emu = HashMap::from([("X-Emu".to_string(), "1".to_string()), ("other".to_string(), "2".to_string())]);
    assert_eq!(p.capture_emulated(&emu), vec![("x-emu".to_string(), "1".to_string())]);
}

#[test]
fn b64_payload_wins_and_must_be_json() {
    let plain = Some(serde_json::value::to_raw_value(&1).unwrap());
    let b64 = base64::engine::general_purpose::STANDARD.encode(br#"{"a":1}"#);
    assert_eq!(payload(plain.clone(), Some(&b64)).unwrap().unwrap().get(), r#"{"a":1}"#);
    assert_eq!(payload(plain, None).unwrap().unwrap().get(), "1");
    let not_json = base64::engine::general_purpose::STANDARD.encode(b"\x00\x01");
    assert!(matches!(payload(None, Some(&not_json)), Err(ProxyError::Unavailable(_))));
}

#[test]
fn status_transforms_pick_disconnect_then_error() {
    let mut c = cfg();
    c.http.status_to_code_transforms = vec![
        config::StatusToCode {
            status_code: 403,
            to_error: config::TransformError { code: 403, message: "forbidden".into(), temporary: false },
            ..Default::default()
        },
        config::StatusToCode {
            status_code: 401,
            to_disconnect: config::TransformDisconnect { code: 4501, reason: "unauthorized".into() },
            ..Default::default()
        },
    ];
    let ep = Endpoint { cfg: c, kind: "connect" };
    assert!(matches!(status_error(&ep, 403), ProxyError::Error(e) if e.code == 403));
    assert!(matches!(status_error(&ep, 401), ProxyError::Disconnect(d) if d.code == 4501));
    assert!(matches!(status_error(&ep, 500), ProxyError::Unavailable(_)));
}

#[test]
fn binary_encoding_sends_base64() {
    let data: Raw = Raw::from(serde_json::value::to_raw_value(&serde_json::json!({"a": 1})).unwrap());
    let plain = outgoing_data(&config::Proxy::default(), Some(&data));
    assert_eq!((plain.0.unwrap().get(), plain.1), (r#"{"a":1}"#, None));
    let binary = config::Proxy { binary_encoding: true, ..Default::default() };
    let (d, b64) = outgoing_data(&binary, Some(&data));
    assert!(d.is_none());
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64.unwrap()).unwrap(), br#"{"a":1}"#);
}
