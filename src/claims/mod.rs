//! NATS JWT v2 claims: types, Go-compatible encoding, decoding and
//! verification, validation, and `.creds` files.
//!
//! Byte compatibility: for the same claim values, [`encode`] produces the
//! same payload bytes (and so the same jti) as the Go `nats-io/jwt/v2`
//! library, except that natsform supplies `iat` itself. Decoding ignores
//! unknown fields, so JWTs from newer tools load.
//!
//! Secret hygiene: no type in this module prints a seed in `Debug` or in an
//! error message.

mod account;
mod activation;
mod creds;
mod error;
mod exports;
pub mod gojson;
mod jwt;
mod keys;
mod operator;
mod permissions;
mod signing_keys;
mod user;
mod validate;

#[cfg(test)]
mod tests;

// The claim types, encoding and decoding: the library's surface for the
// binary, the tests and the modules that sign or read JWTs.
pub use account::{
    compat_issues_jwt_2_3, Account, AccountLimits, ExternalAuthorization, JetStreamLimits,
    MsgTrace, OperatorLimits, WeightedMapping,
};
pub use activation::Activation;
pub use creds::{format_user_creds, parse_creds, Creds, Seed};
pub use error::ClaimsError;
pub use exports::{Export, ExportType, Import, SamplingRate, ServiceLatency};
/// `peek` reads a token without trusting it: for showing what a foreign
/// file (or a server) holds.
pub use jwt::peek;
pub use jwt::{
    compute_jti, decode, decode_as, encode, envelope_checking, verify_envelope, AccountClaims,
    ActivationClaims, AnyClaims, ClaimPayload, Claims, ClaimsData, Decoded, Envelope,
    GenericFields, Header, OperatorClaims, UserClaims, HEADER_B64,
};
pub use keys::{is_public_key, public_key_kind, KeyKind};
pub use operator::Operator;
pub use permissions::{
    NatsLimits, Permission, Permissions, ResponsePermission, TimeRange, UserLimits,
    UserPermissionLimits, NO_LIMIT,
};
pub use signing_keys::{SigningKeys, UserScope};
pub use user::User;

// Used inside the crate only: the planner's fast path, the version it writes.
pub(crate) use jwt::{payload_for, LIB_VERSION};
/// Go's syntax checks, for the manifest validator to reuse.
pub(crate) use validate::{is_cidr, is_contained_in, is_go_clock, is_location};
pub use validate::{Issue, Validate};
