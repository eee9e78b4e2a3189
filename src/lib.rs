//! natsform: declarative NATS decentralized authentication.
//!
//! Data flows manifest → desired claims → plan (pure) → apply (keys, store).
//! See ARCHITECTURE.md for the map.

pub mod apply;
pub mod claims;
pub mod cli;
pub mod fsutil;
pub mod keys;
pub mod manifest;
pub mod plan;
pub mod redact;
pub mod runlock;
pub mod safepath;
pub mod source;
pub mod store;
pub mod tree;
pub mod workspace;
