//! The `livekit` object of API responses (livekit.md §2.5).

use serde::Serialize;
use serde_json::Value;

/// What a browser needs to join a LiveKit room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveKitObject {
    /// `LIVEKIT_API_URL` as configured (usually `wss://…`).
    pub url: String,
    /// The LiveKit room name the token is for.
    pub room: String,
    /// The participant token.
    pub token: String,
}

impl LiveKitObject {
    /// `{"url", "room", "token"}`, in that order.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "url": self.url,
            "room": self.room,
            "token": self.token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_url_room_and_token_in_order() {
        let object = LiveKitObject {
            url: "wss://livekit.example.com".to_string(),
            room: "reunion".to_string(),
            token: "a.b.c".to_string(),
        };
        let expected = r#"{"url":"wss://livekit.example.com","room":"reunion","token":"a.b.c"}"#;
        assert_eq!(object.to_json().to_string(), expected);
        assert_eq!(serde_json::to_string(&object).unwrap(), expected);
    }
}
