//! Black-box tests: the real components on the host, over HTTP.

mod accesses;
mod budgets;
mod config;
mod conventions;
mod hardening;
mod host;
mod lobby;
mod login;
mod rooms;
mod webhooks;
