//! The node's activity as Centrifugo v6 reports it: connections and subscriptions
//! accepted and in flight, the node's actions (`add_client`, `broker_subscribe`,
//! `history`…), broadcast duration and PUB/SUB lag, refusals at the node's connection
//! limit, and messages the Redis PUB/SUB hand-off dropped.
//!
//! Label values follow Centrifugo OSS, where they keep cardinality fixed:
//! `accept_protocol` and `channel_namespace` are always empty, `client_name` is
//! `unnamed` (the client sent no name) or `unregistered` (it sent one), and
//! `client_version` is `unversioned` or `unregistered` the same way. So every series
//! is known at start and each handle here is resolved once; recording is an atomic
//! add, as in the rest of `crate::metrics`.

use std::array;

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use super::{TRANSPORTS, ns};

/// A node action (`action` label of `centrifugo_node_action_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddClient,
    RemoveClient,
    AddSubscription,
    RemoveSubscription,
    AddPresence,
    RemovePresence,
    BrokerSubscribe,
    BrokerUnsubscribe,
    History,
    HistoryRecover,
    HistoryRemove,
    Presence,
    PresenceStats,
    Survey,
}

const ACTIONS: [&str; 14] = [
    "add_client",
    "remove_client",
    "add_subscription",
    "remove_subscription",
    "add_presence",
    "remove_presence",
    "broker_subscribe",
    "broker_unsubscribe",
    "history",
    "history_recover",
    "history_remove",
    "presence",
    "presence_stats",
    "survey",
];

/// `client_name` values: no name sent, a name sent.
const CLIENT_NAMES: [&str; 2] = ["unnamed", "unregistered"];
/// `client_version` values: no version sent, a version sent.
const CLIENT_VERSIONS: [&str; 2] = ["unversioned", "unregistered"];

/// The `client_name` × `client_version` row of a client that sent `name` and
/// `version` in its connect command (an index for [`Activity`]'s tables).
pub fn client_kind(name: &str, version: &str) -> usize {
    usize::from(!name.is_empty()) * 2 + usize::from(!version.is_empty())
}

/// Centrifugo's broadcast duration buckets (seconds).
const BROADCAST_BUCKETS: [f64; 19] = [
    0.000001, 0.000005, 0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Centrifugo's PUB/SUB lag buckets (seconds).
const LAG_BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Messages the Redis PUB/SUB readers dropped because the node's hand-off was full
/// (`channel_type`: client channels, node-to-node control).
pub struct PubSubDropped {
    pub client: IntCounter,
    pub control: IntCounter,
}

pub struct Activity {
    /// `centrifugo_client_connections_accepted`, per transport × [`client_kind`].
    accepted: [[IntCounter; 4]; TRANSPORTS.len()],
    /// `centrifugo_client_connections_inflight`, same rows.
    inflight: [[IntGauge; 4]; TRANSPORTS.len()],
    /// `centrifugo_client_subscriptions_inflight`, per `client_name`.
    subscriptions: [IntGauge; 2],
    actions: [IntCounter; ACTIONS.len()],
    /// `centrifugo_node_broadcast_duration_seconds{type="publication"}`.
    pub broadcast: Histogram,
    /// `centrifugo_node_pub_sub_lag_seconds`.
    pub pub_sub_lag: Histogram,
    /// `centrifugo_node_client_connection_limit`: connection requests refused at
    /// `client.connection_limit` or `client.connection_rate_limit`.
    pub connection_limit: IntCounter,
    /// `centrifugo_broker_redis_pub_sub_dropped_messages`.
    pub pub_sub_dropped: PubSubDropped,
}

impl Activity {
    #[allow(clippy::expect_used, reason = "static names and options that the unit tests register")]
    pub(super) fn new(reg: &dyn Fn(Box<dyn Collector>)) -> Activity {
        let client_labels = ["transport", "accept_protocol", "client_name", "client_version"];
        let accepted_vec =
            IntCounterVec::new(ns("client", "connections_accepted", "Count of accepted transports."), &client_labels)
                .expect("valid counter");
        let inflight_vec = IntGaugeVec::new(
            ns("client", "connections_inflight", "Number of inflight client connections."),
            &client_labels,
        )
        .expect("valid gauge");
        let row = |t: usize, k: usize| [TRANSPORTS[t], "", CLIENT_NAMES[k / 2], CLIENT_VERSIONS[k % 2]];
        let accepted = array::from_fn(|t| array::from_fn(|k| accepted_vec.with_label_values(&row(t, k))));
        let inflight = array::from_fn(|t| array::from_fn(|k| inflight_vec.with_label_values(&row(t, k))));
        let subs_vec = IntGaugeVec::new(
            ns("client", "subscriptions_inflight", "Number of inflight client subscriptions."),
            &["channel_namespace", "client_name"],
        )
        .expect("valid gauge");
        let subscriptions = array::from_fn(|k| subs_vec.with_label_values(&["", CLIENT_NAMES[k]]));
        let action_vec = IntCounterVec::new(
            ns("node", "action_count", "Number of various actions called."),
            &["action", "channel_namespace"],
        )
        .expect("valid counter");
        let actions = array::from_fn(|i| action_vec.with_label_values(&[ACTIONS[i], ""]));
        let broadcast_vec = HistogramVec::new(
            HistogramOpts {
                common_opts: ns("node", "broadcast_duration_seconds", "Broadcast duration in seconds"),
                buckets: BROADCAST_BUCKETS.to_vec(),
            },
            &["type", "channel_namespace"],
        )
        .expect("valid histogram");
        let broadcast = broadcast_vec.with_label_values(&["publication", ""]);
        let lag_vec = HistogramVec::new(
            HistogramOpts {
                common_opts: ns("node", "pub_sub_lag_seconds", "Pub sub lag in seconds"),
                buckets: LAG_BUCKETS.to_vec(),
            },
            &["channel_namespace"],
        )
        .expect("valid histogram");
        let pub_sub_lag = lag_vec.with_label_values(&[""]);
        let connection_limit = IntCounter::with_opts(ns(
            "node",
            "client_connection_limit",
            "Number of refused requests due to node client connection limit.",
        ))
        .expect("valid counter");
        let dropped_vec = IntCounterVec::new(
            ns(
                "broker",
                "redis_pub_sub_dropped_messages",
                "Number of dropped messages on application level in Redis PUB/SUB.",
            ),
            &["broker_name", "channel_type"],
        )
        .expect("valid counter");
        let pub_sub_dropped = PubSubDropped {
            client: dropped_vec.with_label_values(&["", "client"]),
            control: dropped_vec.with_label_values(&["", "control"]),
        };
        reg(Box::new(accepted_vec));
        reg(Box::new(inflight_vec));
        reg(Box::new(subs_vec));
        reg(Box::new(action_vec));
        reg(Box::new(broadcast_vec));
        reg(Box::new(lag_vec));
        reg(Box::new(connection_limit.clone()));
        reg(Box::new(dropped_vec));
        Activity {
            accepted,
            inflight,
            subscriptions,
            actions,
            broadcast,
            pub_sub_lag,
            connection_limit,
            pub_sub_dropped,
        }
    }

    #[inline]
    pub fn action(&self, a: Action) {
        self.actions[a as usize].inc();
    }

    /// A connection joined the hub (`kind` from [`client_kind`]).
    #[inline]
    pub fn client_added(&self, transport: usize, kind: usize) {
        self.accepted[transport][kind].inc();
        self.inflight[transport][kind].inc();
        self.action(Action::AddClient);
    }

    /// A connection counted by [`Activity::client_added`] left the hub.
    #[inline]
    pub fn client_removed(&self, transport: usize, kind: usize) {
        self.inflight[transport][kind].dec();
        self.action(Action::RemoveClient);
    }

    /// A subscription was made (`named`: the client sent a name) and, with `first`,
    /// it was the node's first to its channel (the broker starts listening).
    #[inline]
    pub fn subscription_added(&self, named: bool, first: bool) {
        self.subscriptions[usize::from(named)].inc();
        self.action(Action::AddSubscription);
        if first {
            self.action(Action::BrokerSubscribe);
        }
    }

    /// A subscription was removed; with `last`, the node's last to its channel.
    #[inline]
    pub fn subscription_removed(&self, named: bool, last: bool) {
        self.subscriptions[usize::from(named)].dec();
        self.action(Action::RemoveSubscription);
        if last {
            self.action(Action::BrokerUnsubscribe);
        }
    }
}
