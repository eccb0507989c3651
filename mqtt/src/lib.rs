//! # switchyard-mqtt
//!
//! MQTT 3.1.1 for a [`switchyard::Broker`]: a tokio listener ([`MqttServer`]) so clients in other
//! processes, languages and machines publish and subscribe, and a [`Bridge`] that carries chosen topics
//! to and from an existing MQTT broker.
//!
//! Packets are read and written with the MQTT 3.1.1 codec of the `rumqttc` crate
//! (`rumqttc::mqttbytes::v4`); this crate adds the server's side of the protocol: sessions, QoS flows,
//! keep-alive, wills, limits.
//!
//! Every MQTT subscription is a broker subscription with a bounded queue and an overflow policy
//! ([`MqttConfig::queue_capacity`], [`MqttConfig::policy`]): a slow client loses messages by policy,
//! and each loss is counted by reason in the broker's stats and per client in [`MqttStats`].
//!
//! ```
//! use switchyard::Broker;
//! use switchyard_mqtt::{MqttConfig, MqttServer};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let broker = Broker::new();
//! let server = MqttServer::bind("127.0.0.1:0", broker.clone(), MqttConfig::default()).await.unwrap();
//! // MQTT clients connect to server.local_addr(); in-process code uses `broker` as always.
//! let sensors = broker.subscribe("sensors/#").unwrap();
//! # drop((server, sensors));
//! # });
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod auth;
mod bridge;
mod config;
mod connection;
mod frame;
mod listener_stats;
mod lock;
mod outgoing;
mod pending;
mod receive;
mod receiver;
mod server;
mod session;
mod shared;
mod shared_group;
mod sys;
mod transport;

pub use auth::{
    AccessFiles, AclFile, AclFileError, AclRefusedByReason, AclStats, DEFAULT_ITERATIONS,
    PasswordFile, PasswordFileError, PasswordHash, ReloadError, ReloadStats, Reloaded, SALT_LEN,
};
pub use bridge::{
    Bridge, BridgeConfig, BridgeError, BridgeLogin, BridgeOutFilterStats, BridgeStats,
};
pub use config::{ConfigError, MqttConfig};
pub use frame::{DecodeError, decode, decode_first};
pub use listener_stats::{
    AuthRefusedByReason, AuthStats, ClientStats, ClientSubscriptionStats, CloseReason,
    ClosedByReason, MqttStats,
};
pub use server::{BindError, ListenerHandle, MqttServer};
pub use transport::{
    Listener, ListenerStats, TlsClientFiles, TlsFileError, TlsServer, TlsServerFiles, Transport,
    TransportKind,
};
