//! The rules of the domain, as pure functions: the access table, the status machine, locks and
//! the four-eyes review.

pub mod access;
pub mod lifecycle;

pub use access::*;
pub use lifecycle::*;
