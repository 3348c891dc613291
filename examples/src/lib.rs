//! Example servers built on actor-core, usable as libraries so their tests can start them on
//! port 0 and drive them through real sockets.

pub mod chat;
pub mod cluster;
pub mod matchmaking;
pub mod serve;
