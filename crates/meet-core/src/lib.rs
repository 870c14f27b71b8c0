//! The core of the Meet backend.
//!
//! Everything here is plain Rust with no I/O of its own: components built for
//! Spin and native tests drive it through the ports of [`ports`].

pub mod accesses;
pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod http;
pub mod login;
pub mod oidc;
pub mod pagination;
pub mod pin;
pub mod ports;
pub mod roles;
pub mod rooms_api;
pub mod routing;
pub mod sessions;
pub mod settings;
pub mod slug;
pub mod store;
pub mod throttle;
pub mod users;
pub mod users_api;

#[cfg(feature = "native")]
pub mod native;

pub use error::ApiError;
pub use http::{ApiRequest, ApiResponse, Method};
