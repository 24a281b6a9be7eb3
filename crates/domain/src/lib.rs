#![doc = include_str!("../README.md")]

pub mod error;
pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use error::{ErrorCode, PathError, StorageError};
