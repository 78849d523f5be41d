//! Configuration: the schema with defaults (`schema.rs`), Go-style durations
//! (`duration.rs`), loading from JSON/YAML/TOML files, `ROTOR_` environment variables
//! and flags with unknown-key detection (`load.rs`), and validation (`validate.rs`).
//! Nothing here performs network I/O or starts the server.

mod duration;
mod load;
mod schema;
mod validate;

pub use duration::Duration;
pub use load::{ConfigError, Loaded, Overrides, load, load_with_env, parse_str};
pub use schema::*;
pub use validate::validate;
