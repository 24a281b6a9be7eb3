//! The rules of the domain, as pure functions: the access table, the status machine, locks and
//! the four-eyes review; and ([`store`]) the decisions the metadata store takes inside its units
//! of work.

pub mod access;
pub mod lifecycle;
pub mod retention;
pub mod store;
pub mod trash;

pub use access::*;
pub use lifecycle::*;
pub mod chain;
pub mod checkpoint;
pub mod events;
