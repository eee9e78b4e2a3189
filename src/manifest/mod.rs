//! The manifest: what people write (TOML or YAML), parsed, located and checked.

pub(crate) mod address;
pub mod diagnostic;
pub mod duration;
pub(crate) mod explain;
pub mod load;
pub mod model;
mod model_limits;
mod model_wiring;
pub mod remembered;
pub(crate) mod schema;
pub(crate) mod spans;
pub(crate) mod subject;
pub(crate) mod subject_match;
pub mod units;
pub mod validate;

pub use diagnostic::{Diagnostic, ManifestErrors};
pub use load::{load, load_from, Format, Loaded};
pub use model::Manifest;
pub use validate::{check_resolver_url, validate};
