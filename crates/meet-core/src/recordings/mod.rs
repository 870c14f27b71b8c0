//! Recordings: start/stop through LiveKit Egress, the recordings API, the storage hook,
//! media access, owner notifications (outbox) and maintenance (api.md §4, §6; domain.md §4–6; livekit.md §4; recordings.md).

pub mod api;
pub mod egress;
pub mod events;
pub mod maintenance;
pub mod media;
pub mod model;
pub mod notify;
pub mod storage_hook;
pub mod store;
