//! The admin UI in a real headless Chromium (Debian package `chromium`), driven over
//! the DevTools protocol. Elements are found as a person would find them: by role and
//! accessible name from Chromium's accessibility tree (`Accessibility.queryAXTree`),
//! never by CSS class. Skips, saying so, when Chromium is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::admin::{Admin, PASSWORD, admin_config};
use crate::harness::{Closed, Server, Ws, temp_dir, token};

const DEADLINE: Duration = Duration::from_secs(15);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    path.exists().then_some(path)
}

/// A headless Chromium with one page, attached over the DevTools protocol.
struct Browser {
    child: Child,
    dir: PathBuf,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
}

impl Browser {
    async fn launch(exe: &Path) -> Browser {
        let dir = temp_dir("chromium");
        let child = Command::new(exe)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port_file = dir.join("DevToolsActivePort");
        let deadline = Instant::now() + DEADLINE;
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let [port, path, ..] = text.lines().collect::<Vec<_>>()[..]
            {
                break format!("ws://127.0.0.1:{port}{path}");
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(endpoint).await.expect("devtools websocket");
        let mut b = Browser { child, dir, ws, session: String::new(), next_id: 1 };
        let target = b.send("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached = b.send("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// One DevTools command (on the page's session once attached); its result.
    async fn send(&mut self, method: &str, params: Value) -> Value {
        match self.try_send(method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// As `send`, with the protocol's error (a node gone while the page changes).
    async fn try_send(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::Text(msg.to_string().into())).await.unwrap();
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next()).await.expect("devtools reply").unwrap().unwrap();
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    async fn goto(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url})).await;
    }

    /// Nodes with this role and accessible name, under `within` (the document if None).
    async fn query(&mut self, within: Option<&str>, role: &str, name: Option<&str>) -> Vec<i64> {
        let mut params = json!({"role": role});
        if let Some(n) = name {
            params["accessibleName"] = json!(n);
        }
        match within {
            Some(object) => params["objectId"] = json!(object),
            None => {
                let doc = self.send("DOM.getDocument", json!({"depth": 0})).await;
                params["nodeId"] = doc["root"]["nodeId"].clone();
            }
        }
        // The document may be replaced between the two calls: then nothing is found yet.
        let Ok(r) = self.try_send("Accessibility.queryAXTree", params).await else { return Vec::new() };
        r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["ignored"] != true)
            .filter_map(|n| n["backendDOMNodeId"].as_i64())
            .collect()
    }

    /// Waits for an element by role and name; returns its JavaScript object id.
    async fn find(&mut self, within: Option<&str>, role: &str, name: Option<&str>) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(&node) = self.query(within, role, name).await.first()
                && let Ok(r) = self.try_send("DOM.resolveNode", json!({"backendNodeId": node})).await
            {
                return r["object"]["objectId"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no {role} named {name:?} appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn call_on(&mut self, object: &str, function: &str, args: Value) -> Value {
        let r = self
            .send(
                "Runtime.callFunctionOn",
                json!({"objectId": object, "functionDeclaration": function, "arguments": args, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    async fn click(&mut self, role: &str, name: &str) {
        let o = self.find(None, role, Some(name)).await;
        self.call_on(&o, "function() { this.click(); }", json!([])).await;
    }

    async fn fill(&mut self, name: &str, text: &str) {
        let o = self.find(None, "textbox", Some(name)).await;
        let f =
            "function(v) { this.focus(); this.value = v; this.dispatchEvent(new Event('input', {bubbles: true})); }";
        self.call_on(&o, f, json!([{"value": text}])).await;
    }

    async fn text(&mut self, object: &str) -> String {
        self.call_on(object, "function() { return this.textContent; }", json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until some element of `role` has text containing `needle`.
    async fn wait_text(&mut self, role: &str, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            for node in self.query(None, role, None).await {
                let Ok(r) = self.try_send("DOM.resolveNode", json!({"backendNodeId": node})).await else { continue };
                let text = self.text(r["object"]["objectId"].as_str().unwrap()).await;
                if text.contains(needle) {
                    return text;
                }
            }
            assert!(Instant::now() < deadline, "no {role} saying {needle:?} appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the page at 1280×800 (for the docs: `ROTOR_ADMIN_SCREENSHOT=<file>`).
    async fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let metrics = json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false});
        self.send("Emulation.setDeviceMetricsOverride", metrics).await;
        let r = self.send("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Waits until the accessible names of the "Connections" table's result rows
    /// satisfy `ok`; returns them.
    async fn wait_rows(&mut self, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let table = self.find(None, "table", Some("Connections")).await;
            let r = self
                .try_send("Accessibility.queryAXTree", json!({"objectId": table, "role": "row"}))
                .await
                .unwrap_or_else(|_| json!({"nodes": []}));
            let names: Vec<String> = r["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["ignored"] != true)
                .filter_map(|n| n["name"]["value"].as_str())
                .filter(|n| n.starts_with("Connection "))
                .map(String::from)
                .collect();
            if ok(&names) {
                return names;
            }
            assert!(Instant::now() < deadline, "the result rows stayed {names:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    async fn wait_eval(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            // While the page navigates (login, a reload), an evaluation can be cut
            // off ("Inspected target navigated or closed"): that is "not yet".
            let params = json!({"expression": expression, "returnByValue": true});
            let v = match self.try_send("Runtime.evaluate", params).await {
                Ok(r) => r["result"]["value"].clone(),
                Err(_) => Value::Null,
            };
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(Instant::now() < deadline, "never true: {expression}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self.send("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Log in (wrong, then right password), see the nodes, find connections by user and
/// by label filter, read a bad filter's message, confirm-dialog of the bulk disconnect
/// (cancelled), and a row's Disconnect closing that connection and no other.
#[tokio::test]
async fn admin_browser_login_status_and_explorer() {
    let Some(exe) = chromium() else {
        eprintln!("skipping admin_browser test: chromium not found (apt-get install -y chromium, or set CHROMIUM)");
        return;
    };
    let server = Server::start(admin_config()).await;
    let mut alice = Ws::connect(&server, &token("alice", json!({"labels": {"region": "eu"}}))).await;
    let (mut bob, bob_connected) = Ws::connect(&server, &token("bob", json!({"labels": {"region": "us"}}))).await;
    let bob_id = bob_connected["client"].as_str().unwrap().to_string();

    let mut b = Browser::launch(&exe).await;
    b.goto(&format!("{}/", server.http())).await;
    b.fill("Password", "wrong").await;
    b.click("button", "Log in").await;
    b.wait_text("alert", "Wrong password").await;
    b.fill("Password", PASSWORD).await;
    b.click("button", "Log in").await;

    b.find(None, "link", Some("Status")).await;
    let table = b.find(None, "table", Some("Nodes")).await;
    let deadline = Instant::now() + DEADLINE;
    while b.query(Some(&table), "row", None).await.len() < 2 {
        assert!(Instant::now() < deadline, "the nodes table stayed empty");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.find(None, "image", Some("Clients over time")).await;

    b.click("link", "Connections").await;
    b.fill("User", "alice").await;
    b.click("button", "Search").await;
    b.find(None, "row", Some(&format!("Connection {}", alice.1["client"].as_str().unwrap()))).await;
    assert!(b.query(None, "row", Some(&format!("Connection {bob_id}"))).await.is_empty());

    b.fill("User", "").await;
    b.fill("Label filter", r#"{"key":"region","cmp":"bogus"}"#).await;
    b.click("button", "Search").await;
    b.wait_text("alert", "label_filter").await;

    // The builder edits the same filter: both rows match `in [eu, us]`.
    b.fill("Label filter", r#"{"key":"region","cmp":"in","vals":["eu","us"]}"#).await;
    b.click("button", "Builder").await;
    let key = b.find(None, "textbox", Some("Key")).await;
    assert_eq!(b.call_on(&key, "function() { return this.value; }", json!([])).await, "region");
    b.click("button", "Search").await;
    b.find(None, "row", Some(&format!("Connection {bob_id}"))).await;
    b.find(None, "row", Some(&format!("Connection {}", alice.1["client"].as_str().unwrap()))).await;
    if let Some(path) = std::env::var_os("ROTOR_ADMIN_SCREENSHOT") {
        b.screenshot(Path::new(&path)).await;
    }
    b.click("button", "JSON").await;

    // A CEL search whose query (page size 1) comes from the URL after a reload; paging.
    let share = r#"window.stale = true; location.hash = '#/connections?' +
        new URLSearchParams({expr: 'user != ""', limit: '1'}); true"#;
    b.eval(share).await;
    b.send("Page.reload", json!({})).await;
    b.wait_eval("!window.stale && document.readyState === 'complete'").await;
    let first = b.wait_rows(|r| r.len() == 1).await;
    b.click("button", "Next page").await;
    let second = b.wait_rows(|r| r.len() == 1 && r != first.as_slice()).await;
    assert_ne!(first, second);
    let next = b.find(None, "button", Some("Next page")).await;
    let disabled = b.call_on(&next, "function() { return this.disabled; }", json!([])).await;
    assert_eq!(disabled, true, "two connections, two pages");
    b.click("button", "Previous page").await;
    b.wait_rows(|r| r == first.as_slice()).await;

    b.fill("Expression", "").await;
    b.fill("Label filter", r#"{"key":"region","cmp":"eq","val":"us"}"#).await;
    b.click("button", "Search").await;
    let bob_row = format!("Connection {bob_id}");
    b.wait_rows(|r| r == std::slice::from_ref(&bob_row)).await;
    let row = b.find(None, "row", Some(&bob_row)).await;
    let hash = b.eval("location.hash").await;
    assert!(hash.as_str().unwrap().contains("filter="), "the query lives in the URL: {hash}");

    b.click("button", "Disconnect all matching").await;
    b.wait_text("dialog", "disconnects 1 connection").await;
    b.click("button", "Cancel").await;

    let disconnect = b.find(Some(&row), "button", Some("Disconnect")).await;
    b.call_on(&disconnect, "function() { this.click(); }", json!([])).await;
    assert!(matches!(bob.closed().await, Closed::Code(..)), "bob's connection was closed");
    let admin = Admin::login(&server).await;
    let alive = admin.call("connections", json!({"expression": "user != \"\""})).await;
    let alive: Vec<&String> = alive["result"]["connections"].as_object().unwrap().keys().collect();
    assert_eq!(alive, vec![alice.1["client"].as_str().unwrap()], "only bob's connection closed");
    let reply = alice.0.call("presence_stats", json!({"channel": "x"})).await;
    assert!(reply.get("id").is_some());

    // Actions: a method, its params, the JSON reply.
    b.click("link", "Actions").await;
    let method = b.find(None, "combobox", Some("Method")).await;
    let choose = "function() { this.value = 'info'; this.dispatchEvent(new Event('change')); }";
    b.call_on(&method, choose, json!([])).await;
    b.click("button", "Send").await;
    let reply = b.find(None, "status", Some("Reply")).await;
    let deadline = Instant::now() + DEADLINE;
    while !b.text(&reply).await.contains("\"num_clients\": 1") {
        assert!(Instant::now() < deadline, "no info reply shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
