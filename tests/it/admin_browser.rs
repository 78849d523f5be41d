//! The admin UI in a real headless Chromium (Debian package `chromium`) driven by npm
//! `playwright-core` (`tests/compat/js/admin_ui.mjs`, packages installed by
//! `compat_env.rs`). This test starts the real server and real WebSocket
//! connections of several users with labels, runs the script, and answers its
//! checkpoints with what only the sockets can tell: a connection closed (and no other),
//! a push received. The script finds elements by role and accessible name. Skips,
//! saying so, only when Chromium is not installed; a missing node/npm fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::admin::{Admin, PASSWORD, admin_config};
use crate::compat_env;
use crate::harness::{Closed, Server, Ws, now_secs, token};
use crate::sessions::{BLOCKED, REVOKED, refused, try_connect};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// `$CHROMIUM`, else `chromium` found on `PATH` (what `which chromium` prints), else
/// `/usr/bin/chromium`; None when none of them exists.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file());
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/chromium"))).filter(|p| p.exists())
}

/// The test's connections by name (socket and client id), and the token each used.
struct Conns(BTreeMap<&'static str, (Ws, String)>, BTreeMap<&'static str, String>);

impl Conns {
    fn id(&self, name: &str) -> &str {
        &self.0[name].1
    }

    fn name_of(&self, client: &str) -> &'static str {
        self.0.iter().find(|(_, (_, id))| id == client).map(|(n, _)| *n).expect("a known client id")
    }

    fn ws(&mut self, name: &str) -> &mut Ws {
        &mut self.0.get_mut(name).expect("a known connection").0
    }

    /// Asserts `name` was closed by the server, and forgets it.
    async fn expect_closed(&mut self, name: &str) {
        let (mut ws, _) = self.0.remove(name).expect("a known connection");
        assert!(matches!(ws.closed().await, Closed::Code(..)), "{name}'s connection was closed by the server");
    }

    /// Asserts `name` was closed by the server with `code`, and forgets it.
    async fn expect_closed_with(&mut self, name: &str, code: u16) {
        let (mut ws, _) = self.0.remove(name).expect("a known connection");
        match ws.closed().await {
            Closed::Code(c, reason) => assert_eq!(c, code, "{name} closed with {c} {reason:?}"),
            Closed::NoFrame => panic!("{name}: no close frame"),
        }
    }

    /// Opens a connection of `user` with `claims` and remembers it as `name`.
    async fn open(&mut self, server: &Server, name: &'static str, user: &str, claims: Value) -> String {
        let tok = token(user, claims);
        let (ws, connected) = Ws::connect(server, &tok).await;
        let id = connected["client"].as_str().unwrap().to_string();
        self.0.insert(name, (ws, id.clone()));
        self.1.insert(name, tok);
        id
    }

    /// Asserts every remaining connection still answers a command.
    async fn expect_open(&mut self) {
        for (name, (ws, _)) in self.0.iter_mut() {
            // Any reply (a result or an error) means the connection is open.
            let reply = ws.call("presence_stats", json!({"channel": "news"})).await;
            assert!(reply["id"].is_u64(), "{name} still answers: {reply}");
        }
    }
}

/// Waits until the server lists (over the admin API, any user) exactly `want`: a
/// closed connection leaves the hub just after its close frame.
async fn expect_listed(admin: &Admin, mut want: Vec<String>) {
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = admin.call("connections", json!({"expression": "user != \"\"", "limit": 100})).await;
        let conns = r["result"]["connections"].as_object().expect("a connection map");
        let mut ids: Vec<String> = conns.keys().cloned().collect();
        ids.sort();
        if ids == want {
            assert_eq!(r["result"]["total"], want.len(), "{r}");
            return;
        }
        assert!(Instant::now() < deadline, "the server lists {ids:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Conns {
    fn ids(&self) -> Vec<String> {
        self.0.values().map(|(_, id)| id.clone()).collect()
    }
}

/// Answers one checkpoint of the script (panics when the sockets disagree); what it
/// returns is added to the answer.
async fn checkpoint(step: &Value, conns: &mut Conns, server: &Server, admin: &Admin) -> Value {
    let name = |conns: &Conns| conns.name_of(step["client"].as_str().expect("the step names a client"));
    match step["step"].as_str().unwrap_or("") {
        "refreshed" => {
            let dave = conns.name_of(step["client"].as_str().unwrap());
            conns.ws(dave).push_where(|p| p.get("refresh").is_some()).await;
        }
        "published" => {
            let data = step["data"].clone();
            for name in ["alice1", "dave"] {
                let push =
                    conns.ws(name).push_where(|p| p["channel"] == step["channel"] && p.get("pub").is_some()).await;
                assert_eq!(push["pub"]["data"], data, "{name} got the publication");
            }
        }
        "subscribed" => {
            let carol = conns.name_of(step["client"].as_str().unwrap());
            let channel = step["channel"].clone();
            conns.ws(carol).push_where(|p| p["channel"] == channel && p.get("subscribe").is_some()).await;
        }
        "row-disconnected" => {
            let bob = conns.name_of(step["client"].as_str().unwrap());
            conns.expect_closed(bob).await;
            conns.expect_open().await;
            expect_listed(admin, conns.ids()).await;
        }
        "bulk-cancelled" => {
            assert_eq!(conns.0.len(), 4);
            conns.expect_open().await;
            expect_listed(admin, conns.ids()).await;
        }
        "bulk-confirmed" => {
            for id in step["closed"].as_array().unwrap() {
                let name = conns.name_of(id.as_str().unwrap());
                conns.expect_closed(name).await;
            }
            conns.expect_open().await;
            assert_eq!(conns.0.keys().copied().collect::<Vec<_>>(), ["dave"]);
            expect_listed(admin, vec![conns.id("dave").to_string()]).await;
            // Two connections of erin for the session steps, with tokens issued a while
            // ago so "issued before now" surely covers them.
            let iat = now_secs() - 10;
            let erin1 = conns.open(server, "erin1", "erin", json!({"jti": "tok-e1", "iat": iat})).await;
            let erin2 = conns.open(server, "erin2", "erin", json!({"jti": "tok-e2", "iat": iat})).await;
            return json!({"conns": {"erin1": erin1, "erin2": erin2}});
        }
        "token-revoked" => {
            let erin1 = name(conns);
            conns.expect_closed_with(erin1, REVOKED).await;
            conns.expect_open().await;
            assert_eq!(refused(server, &conns.1[erin1]).await, REVOKED, "the revoked token connects again");
        }
        "tokens-invalidated" => {
            let erin2 = name(conns);
            conns.expect_closed_with(erin2, REVOKED).await;
            conns.expect_open().await;
            assert_eq!(refused(server, &conns.1[erin2]).await, REVOKED, "an invalidated token connects again");
        }
        "block-cancelled" => {
            assert_eq!(name(conns), "dave");
            // A block closes at once: dave still answering means nothing was blocked.
            conns.expect_open().await;
        }
        "blocked" => {
            let dave = name(conns);
            conns.expect_closed_with(dave, BLOCKED).await;
            assert_eq!(refused(server, &conns.1[dave]).await, BLOCKED, "a blocked user connects");
        }
        "unblocked" => {
            try_connect(server, &conns.1["dave"]).await.expect("dave connects again after Unblock");
        }
        other => panic!("unknown checkpoint {other:?}: {step}"),
    }
    Value::Null
}

/// Everything the issue asks of the UI in one browser session: login (wrong and right
/// password), the nodes table, search by user, by label filter (JSON and builder) and
/// by CEL, bad filters' alerts, paging from a shared URL with the total, a row's
/// details, Refresh and Disconnect, Actions (publish reaching subscribers, presence,
/// history, subscribe, channels, info) and the bulk disconnect's confirmation.
#[tokio::test]
async fn admin_browser_playwright() {
    let Some(exe) = chromium() else {
        eprintln!("skipping admin_browser test: chromium not found (apt-get install -y chromium, or set CHROMIUM)");
        return;
    };
    let node_modules = compat_env::node_modules();
    let server = Server::start(admin_config()).await;
    let admin = Admin::login(&server).await;
    let info = admin.call("info", json!({})).await;
    let node_name = info["result"]["nodes"][0]["name"].as_str().expect("node name").to_string();

    let specs: [(&str, &str, Value); 5] = [
        ("alice1", "alice", json!({"labels": {"region": "eu", "plan": "free"}})),
        ("alice2", "alice", json!({"labels": {"region": "eu", "plan": "free"}})),
        ("bob", "bob", json!({"labels": {"region": "us", "plan": "pro"}})),
        ("carol", "carol", json!({"labels": {"region": "us", "plan": "free"}})),
        (
            "dave",
            "dave",
            json!({"labels": {"region": "eu", "plan": "pro"}, "meta": {"device": "phone"}, "jti": "tok-dave"}),
        ),
    ];
    let mut conns = Conns(BTreeMap::new(), BTreeMap::new());
    for (name, user, claims) in specs {
        let tok = token(user, claims);
        let (mut ws, connected) = Ws::connect(&server, &tok).await;
        conns.1.insert(name, tok);
        if name == "alice1" || name == "dave" {
            let r = ws.call("subscribe", json!({"channel": "news"})).await;
            assert!(r.get("subscribe").is_some(), "{r}");
        }
        conns.0.insert(name, (ws, connected["client"].as_str().unwrap().to_string()));
    }
    let ids: BTreeMap<&str, &str> = conns.0.iter().map(|(n, (_, id))| (*n, id.as_str())).collect();
    let ids = serde_json::to_string(&ids).unwrap();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/compat/js/admin_ui.mjs"))
        .env("NODE_PATH", &node_modules)
        .env("CHROMIUM", &exe)
        .env("ROTOR_URL", server.http())
        .env("ROTOR_ADMIN_PASSWORD", PASSWORD)
        .env("ROTOR_NODE", &node_name)
        .env("ROTOR_CONNS", ids)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start node");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await.ok();
        s
    });

    let mut steps = Vec::new();
    let mut done = false;
    let talk = async {
        while let Some(line) = stdout.next_line().await.expect("read the script's output") {
            if let Some(step) = line.strip_prefix("STEP ") {
                let step: Value = serde_json::from_str(step).expect("a JSON checkpoint");
                let extra = checkpoint(&step, &mut conns, &server, &admin).await;
                steps.push(step["step"].as_str().unwrap().to_string());
                let mut answer = json!({"ok": true});
                if let Value::Object(extra) = extra {
                    answer.as_object_mut().unwrap().extend(extra);
                }
                stdin.write_all(format!("{answer}\n").as_bytes()).await.expect("answer the script");
            } else if line == "DONE" {
                done = true;
            }
        }
    };
    tokio::time::timeout(SCRIPT_TIMEOUT, talk).await.expect("the browser script finished in time");
    let status = child.wait().await.unwrap();
    let err = stderr_text.await.unwrap();
    assert!(status.success() && done, "admin_ui.mjs failed ({status}):\n{err}");
    let want = [
        "refreshed",
        "published",
        "subscribed",
        "row-disconnected",
        "bulk-cancelled",
        "bulk-confirmed",
        "token-revoked",
        "tokens-invalidated",
        "block-cancelled",
        "blocked",
        "unblocked",
    ];
    assert_eq!(steps, want, "every checkpoint was reached");
}
