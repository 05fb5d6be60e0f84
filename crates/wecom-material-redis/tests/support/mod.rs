//! Test support: the fleet worker and its harness. The `redis-server` starter is the crate's
//! `test_server` module (feature `test-server`).

#![allow(dead_code, unreachable_pub)]

pub mod capture;
pub mod fleet;
pub mod worker;

pub use wecom_material_redis::test_server::RedisServer;
