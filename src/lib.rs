//! natsform: declarative NATS decentralized authentication.
//!
//! Data flows manifest → desired claims → plan (pure) → apply (keys, store).
//! See ARCHITECTURE.md for the map.

pub mod apply;
pub(crate) mod cachefile;
pub mod claims;
pub mod cli;
pub mod deploy;
pub(crate) mod fsutil;
pub mod import;
pub mod journal;
pub mod keys;
pub mod live;
pub mod manifest;
pub mod plan;
pub(crate) mod redact;
pub(crate) mod runlock;
pub(crate) mod safepath;
pub mod serverconfig;
pub mod show;
pub mod source;
pub mod store;
pub mod tree;
pub mod verified;
pub mod workspace;
