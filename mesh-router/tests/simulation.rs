//! The fleet simulation of `examples/simulate.rs`, smaller: on a heterogeneous fleet the
//! learning router beats every static strategy on latency or cost without a worse
//! failure rate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    dead_code,
    missing_docs
)]

#[path = "../examples/sim/mod.rs"]
mod sim;

#[test]
fn learning_beats_every_static_strategy() {
    let seed = 42;
    let agents = sim::fleet(seed, 40);
    let reports: Vec<sim::Report> = sim::strategies(mesh_router::LearningConfig::default())
        .iter_mut()
        .map(|r| sim::run(r.as_mut(), &agents, 20_000, 0.4, seed))
        .collect();
    let learning = reports.iter().find(|r| r.strategy == "learning").unwrap();
    for r in reports.iter().filter(|r| r.strategy != "learning") {
        assert!(
            sim::beats(learning, r),
            "learning {learning:?}\n does not beat {r:?}"
        );
    }
}

#[test]
fn the_simulation_is_deterministic() {
    let agents = sim::fleet(7, 12);
    let a = sim::run(&mut mesh_router::LeastLoaded, &agents, 2_000, 0.5, 7);
    let b = sim::run(&mut mesh_router::LeastLoaded, &agents, 2_000, 0.5, 7);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
