//! The ports: what the use cases need from the outside world, as traits. Adapters implement
//! them; `Mock*` types (mockall) exist under the `mock` feature and in this crate's tests.

pub mod blob;
pub mod metadata;
pub mod project;
pub mod system;

pub use blob::*;
pub use metadata::*;
pub use project::*;
pub use system::*;
pub mod events;
pub use events::*;
