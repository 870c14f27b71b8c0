//! Rooms: list, create, retrieve (with unregistered rooms and LiveKit tokens),
//! update, delete and the room-creation callback (api.md §2, §4; domain.md §2, §8).

pub mod api;
pub mod slug;
pub mod store;
