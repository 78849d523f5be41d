use super::*;

fn routes() -> Routes {
    Routes::new([("/connection/uni_sse".to_string(), 100), ("/connection/uni_http_stream".to_string(), 100)])
}

fn judged(raw: &str) -> Verdict {
    judge(raw.as_bytes(), &routes())
}

#[test]
fn a_streaming_get_is_taken_whole() {
    let raw = "GET /connection/uni_sse?cf_connect=%7B%7D HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(judged(raw), Verdict::Take { len: raw.len() });
}

#[test]
fn a_streaming_post_is_taken_with_its_body_only_once_the_body_is_here() {
    let head = "POST /connection/uni_http_stream HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(judged(head), Verdict::More { head: Some(head.len()) });
    assert_eq!(judged(&format!("{head}{{")), Verdict::More { head: Some(head.len()) });
    assert_eq!(judged(&format!("{head}{{}}")), Verdict::Take { len: head.len() + 2 });
    // Pipelined bytes after the body are not part of the request.
    assert_eq!(judged(&format!("{head}{{}}GET / HTTP/1.1\r\n")), Verdict::Take { len: head.len() + 2 });
}

#[test]
fn partial_requests_wait_unless_the_request_line_rules_them_out() {
    assert_eq!(judged("GE"), Verdict::More { head: None });
    assert_eq!(judged("GET /connection/uni_sse HTTP/1.1\r\nHost:"), Verdict::More { head: None });
    assert_eq!(judged("GET /api/publish HTTP/1.1\r\nHost:"), Verdict::Hyper);
    assert_eq!(judged("PUT /connection/uni_sse HTTP/1.1\r\nHost:"), Verdict::Hyper);
}

#[test]
fn everything_else_goes_to_hyper() {
    for raw in [
        // Other routes, methods, versions.
        "GET /connection/websocket HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "POST /api HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "OPTIONS /connection/uni_http_stream HTTP/1.1\r\n\r\n",
        "HEAD /connection/uni_sse HTTP/1.1\r\n\r\n",
        "GET /connection/uni_sse HTTP/1.0\r\n\r\n",
        "GET /connection/uni_sse/x HTTP/1.1\r\n\r\n",
        // The HTTP/2 preface.
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        // Bodies this path does not read.
        "POST /connection/uni_http_stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "POST /connection/uni_http_stream HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
        "POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
        "POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}",
        "POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "GET /connection/uni_sse HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        // Not HTTP.
        "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
        "GET /connection/uni_sse HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        assert_eq!(judged(raw), Verdict::Hyper, "{raw:?}");
    }
}

#[test]
fn oversized_or_crowded_requests_go_to_hyper() {
    let long = format!("GET /connection/uni_sse HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(MAX_PEEK));
    assert_eq!(judged(&long), Verdict::Hyper);
    // Incomplete and already at the peek bound.
    assert_eq!(judged(&long[..MAX_PEEK]), Verdict::Hyper);
    let crowded: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(judged(&format!("GET /connection/uni_sse HTTP/1.1\r\n{crowded}\r\n")), Verdict::Hyper);
}

#[test]
fn a_taken_request_becomes_the_same_http_request() {
    let raw = "POST /connection/uni_http_stream?x=1 HTTP/1.1\r\nHost: a\r\nOrigin: http://o.test\r\nContent-Length: 2\r\n\r\n{}";
    let req = request(Bytes::from(raw), None).expect("valid");
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.uri(), "/connection/uni_http_stream?x=1");
    assert_eq!(req.headers()["origin"], "http://o.test");
    assert_eq!(req.body().size_hint().exact(), Some(2));
    // A request `http` refuses (here a DEL in a header value) is answered 400, not served.
    assert!(request(Bytes::from_static(b"GET /connection/uni_sse HTTP/1.1\r\nX: \x7f\r\n\r\n"), None).is_none());
}

#[test]
fn no_route_means_nothing_is_taken() {
    let none = Routes::default();
    assert!(none.is_empty());
    assert_eq!(judge(b"GET /connection/uni_sse HTTP/1.1\r\n\r\n", &none), Verdict::Hyper);
}
