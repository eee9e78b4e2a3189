//! Limits and connection rules in the manifest: account and JetStream
//! limits, user limits, time windows, connection types, default permissions.
//!
//! Omitted limits take `nsc`'s defaults (unlimited), never the JWT's zero
//! value, which would mean "none allowed" (facts §4.1, §13).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::is_false;

use super::model::{ResponsePermission, SubjectPermission};
use super::units::{Limit, Size, UNLIMITED};

/// NATS limits of an account; each omitted one is unlimited.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLimits {
    /// Subscriptions across the account's connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subs: Option<Limit>,
    /// Bytes a connection may send (not enforced by nats-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Size>,
    /// Largest message payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Size>,
    /// Client connections at once (0 refuses every client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<Limit>,
    /// Leaf node connections at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<Limit>,
    /// Number of imports the account may declare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imports: Option<Limit>,
    /// Number of exports the account may declare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<Limit>,
    /// Whether exports may contain wildcards (default true; checked only
    /// when `exports` is limited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub wildcard_exports: Option<bool>,
    /// Refuse users whose JWT is a bearer token (nats-server 2.9+).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub disallow_bearer: bool,
}

impl AccountLimits {
    /// `(subs, data, payload, imports, exports, wildcards, conn, leaf)` as
    /// written to the JWT, omitted ones unlimited.
    pub fn wire(&self) -> AccountLimitValues {
        let l = |v: Option<Limit>| v.map_or(UNLIMITED, Limit::wire);
        let s = |v: Option<Size>| v.map_or(UNLIMITED, Size::wire);
        AccountLimitValues {
            subs: l(self.subs),
            data: s(self.data),
            payload: s(self.payload),
            imports: l(self.imports),
            exports: l(self.exports),
            wildcards: self.wildcard_exports.unwrap_or(true),
            disallow_bearer: self.disallow_bearer,
            conn: l(self.conn),
            leaf: l(self.leaf),
        }
    }
}

/// Account limit values as NATS writes them (`-1` unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimitValues {
    pub subs: i64,
    pub data: i64,
    pub payload: i64,
    pub imports: i64,
    pub exports: i64,
    pub wildcards: bool,
    pub disallow_bearer: bool,
    pub conn: i64,
    pub leaf: i64,
}

/// JetStream limits of an account or of one replication tier. Storage that
/// is omitted is none of that kind (at least one must be set to enable
/// JetStream); omitted counts are unlimited; omitted per-stream maxima
/// leave streams uncapped.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetStream {
    /// Memory storage across all streams (`unlimited`, `512MiB`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_storage: Option<Size>,
    /// Disk storage across all streams (`unlimited`, `10GiB`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_storage: Option<Size>,
    /// Number of streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Limit>,
    /// Number of consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Limit>,
    /// Maximum unacknowledged messages per consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ack_pending: Option<Limit>,
    /// Streams must declare a maximum size (`max_bytes`).
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub max_bytes_required: bool,
    /// Largest size of one memory stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_max_stream_bytes: Option<Size>,
    /// Largest size of one disk stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_max_stream_bytes: Option<Size>,
}

impl JetStream {
    /// Whether these limits give any storage (else JetStream stays disabled).
    pub fn has_storage(&self) -> bool {
        self.mem_storage.is_some_and(|s| s.wire() != 0)
            || self.disk_storage.is_some_and(|s| s.wire() != 0)
    }
}

/// Subscription and payload limits of a user or a scoped role's users;
/// each omitted one is unlimited.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLimits {
    /// Subscriptions of one connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subs: Option<Limit>,
    /// Bytes (not enforced by nats-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Size>,
    /// Largest message payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Size>,
}

/// A daily window in which connecting is allowed; it may cross midnight.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Start, `HH:MM:SS`.
    pub start: String,
    /// End, `HH:MM:SS`.
    pub end: String,
}

/// A kind of client connection.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionType {
    /// Plain NATS clients (TCP).
    Standard,
    /// Clients over WebSocket.
    Websocket,
    /// Leaf node connections.
    Leafnode,
    /// Leaf node connections over WebSocket.
    LeafnodeWs,
    /// MQTT clients.
    Mqtt,
    /// MQTT clients over WebSocket.
    MqttWs,
    /// In-process connections (nats-server 2.11+; alone it locks out every
    /// client on older servers).
    InProcess,
}

impl ConnectionType {
    /// The name NATS uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Standard => "STANDARD",
            ConnectionType::Websocket => "WEBSOCKET",
            ConnectionType::Leafnode => "LEAFNODE",
            ConnectionType::LeafnodeWs => "LEAFNODE_WS",
            ConnectionType::Mqtt => "MQTT",
            ConnectionType::MqttWs => "MQTT_WS",
            ConnectionType::InProcess => "IN_PROCESS",
        }
    }
}

/// Publish, subscribe and response permissions.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Publish permissions.
    #[serde(default, rename = "pub", skip_serializing_if = "Option::is_none")]
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions.
    #[serde(default, rename = "sub", skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubjectPermission>,
    /// Response permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
}
