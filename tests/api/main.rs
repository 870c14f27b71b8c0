//! Black-box tests: the real components on the host, over HTTP.

mod accesses;
mod config;
mod conventions;
mod host;
mod lobby;
mod login;
mod rooms;
mod webhooks;
