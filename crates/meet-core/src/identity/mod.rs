//! Identity: the frontend's configuration, the OIDC login of the browser,
//! the users API and the duplicate-user merge (auth.md §1–2, api.md §3, recordings.md §6).

pub mod api;
pub mod config;
pub mod login;
pub mod merge;
pub mod oidc;
pub mod store;
pub mod users;
