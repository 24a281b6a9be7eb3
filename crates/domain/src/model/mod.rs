//! The domain's values and entities.

mod entities;
mod ids;
mod path;
mod principal;

pub use entities::*;
pub use ids::*;
pub use path::*;
pub use principal::*;
