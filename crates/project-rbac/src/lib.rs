//! Project-service access adapter (hyper client).
