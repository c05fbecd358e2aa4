//! One conformance suite per trait, run against every implementation.

#![allow(dead_code, unreachable_pub)]

pub mod queue;
pub mod repository;
pub mod vector;

use std::sync::atomic::{AtomicU64, Ordering};

/// The address a test service runs at, from the test command. Outside the test command
/// (the variable unset and `MESH_TEST_SERVICES` unset) the test is skipped; inside it a
/// missing service fails the test.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("MESH_TEST_SERVICES").is_some() => {
            panic!(
                "{var} is not set although the test command provisions it: the service is missing"
            )
        }
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test.sh provisions it)");
            None
        }
    }
}

/// A name no other test run uses (tenants, queues), so runs against a shared database
/// never see each other's data.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        uuid::Uuid::now_v7().simple(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
