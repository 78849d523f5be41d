//! Every route of a channel selection gives the same connections as checking each
//! connection directly, across channel sizes that cross the planner's thresholds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{ChannelRoute, Selector};
use crate::auth::ConnectToken;
use crate::config::Config;
use crate::node::{Node, Queue, ServerSubscribe, Session, Transport};
use crate::protocol::client::ConnectRequest;

/// Connection `i` has `region` = `r<i % 5>`, `shard` = `s<i % 97>` and subscribes
/// to channel `c<k>` when `i % k == 0`, for each k in `CHANNELS`.
const N: usize = 3000;
const CHANNELS: [usize; 6] = [1, 2, 7, 40, 150, 1000];

fn node() -> (Arc<Node>, Vec<Arc<Session>>) {
    let node = Node::new(Config::default()).unwrap();
    let request = ConnectRequest::default();
    let mut all = Vec::new();
    for i in 0..N {
        let token = ConnectToken {
            user: format!("u{i}"),
            labels: vec![("region".into(), format!("r{}", i % 5)), ("shard".into(), format!("s{}", i % 97))],
            ..Default::default()
        };
        let queue = Arc::new(Queue::new(1 << 20));
        let s = Arc::new(node.new_session(&request, Transport::WebSocket, Some(&token), queue));
        node.hub.add(s.clone()).unwrap();
        all.push(s);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for k in CHANNELS {
        let subs: Vec<_> = all.iter().step_by(k).cloned().collect();
        let p = ServerSubscribe { channel: format!("c{k}"), ..Default::default() };
        rt.block_on(node.subscribe_sessions(&subs, &p)).unwrap();
    }
    (node, all)
}

#[test]
fn every_channel_route_selects_what_a_direct_check_does() {
    let (node, all) = node();
    let index_of: HashMap<u128, usize> = all.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let labels: [(&str, &dyn Fn(usize) -> bool); 4] = [
        ("", &|_| true),
        (r#" && labels.region == "r1""#, &|i| i % 5 == 1),
        (r#" && labels.shard == "s3""#, &|i| i % 97 == 3),
        (r#" && labels.region in ["r0", "r2", "r3"]"#, &|i| [0, 2, 3].contains(&(i % 5))),
    ];
    for k in CHANNELS {
        for (term, keep) in &labels {
            for (second, also) in [(None, 1), (Some(2), 2), (Some(7), 7)] {
                let mut expr = format!(r#""c{k}" in channels{term}"#);
                if let Some(c) = second {
                    expr.push_str(&format!(r#" && "c{c}" in channels"#));
                }
                let want: BTreeSet<usize> = (0..N).filter(|&i| i % k == 0 && i % also == 0 && keep(i)).collect();
                for route in [ChannelRoute::Planned, ChannelRoute::Index, ChannelRoute::Survey] {
                    let sel = Selector::compile(&node, None, &expr, &None).unwrap().with_channel_route(route);
                    let (got, total) = sel.run_counted(&node, 0, None).unwrap();
                    let got: BTreeSet<usize> = got.iter().map(|s| index_of[&s.id]).collect();
                    assert_eq!(got, want, "{expr} by {route:?}");
                    assert_eq!(total, want.len(), "{expr} by {route:?}: total");
                }
            }
        }
    }
    // After an unsubscribe, no route lists the connection.
    node.unsubscribe_session(&all[0], "c40", (2000, "server unsubscribe"));
    for route in [ChannelRoute::Planned, ChannelRoute::Index, ChannelRoute::Survey] {
        let sel = Selector::compile(&node, None, r#""c40" in channels && labels.region == "r0""#, &None).unwrap();
        let (got, _) = sel.with_channel_route(route).run_counted(&node, 0, None).unwrap();
        assert!(got.iter().all(|s| s.id != all[0].id), "{route:?}");
        assert_eq!(got.len(), (1..N).filter(|i| i % 40 == 0 && i % 5 == 0).count(), "{route:?}");
    }
}
