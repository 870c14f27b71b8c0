//! Black-box tests: the real components on the host, over HTTP.

mod accesses;
mod config;
mod conventions;
mod host;
mod login;
mod rooms;
