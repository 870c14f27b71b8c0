//! Black-box tests: the real components on the host, over HTTP.

mod accesses;
mod budgets;
mod components;
mod config;
mod conformance;
mod conventions;
mod egress;
mod hardening;
mod host;
mod invitations;
mod lobby;
mod login;
mod recordings;
mod rooms;
mod sip;
mod telephony;
mod webhooks;
