//! Telephony: room PINs unique by construction, the SIP gateways' PIN lookup with its
//! phone lobby and lockout, LiveKit SIP dispatch rules (domain.md §8 and its "later upstream", issue 11).

pub mod api;
pub mod phone_lobby;
pub mod pins;
pub mod sip;
pub mod store;
