//! The lobby (waiting room): `request-entry/`, `waiting-participants/`,
//! `enter/` and the admins' notification over LiveKit (../shared/spec lobby.md, api.md §4).

pub mod api;
pub mod store;
pub mod webhooks;
