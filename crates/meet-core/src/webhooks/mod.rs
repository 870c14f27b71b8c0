//! LiveKit webhooks: `POST rooms/webhooks-livekit/`, verified by LiveKit's
//! JWT only, then dispatched by event type (livekit.md §5).

pub mod api;
pub mod dispatch;
pub mod store;
