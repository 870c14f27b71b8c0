//! Invitations to a room, sent by email to each recipient on their own
//! (api.md §4 `POST /rooms/{id}/invite/`, spec README corrections 8 and 11).

pub mod api;
pub mod recipients;
pub mod store;
