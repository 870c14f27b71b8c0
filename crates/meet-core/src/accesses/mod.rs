//! Resource accesses: who holds which role on which room, with the
//! last-owner rule held by the database (api.md §5; domain.md §3).

pub mod api;
pub mod store;
