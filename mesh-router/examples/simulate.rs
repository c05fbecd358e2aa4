//! Simulates a heterogeneous fleet under Poisson arrivals for every strategy and prints
//! the results as a Markdown table; `--svg FILE` also writes a chart.
//!
//! `cargo run --release -p mesh-router --example simulate -- --tasks 50000 --svg docs/routing.svg`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    dead_code
)]

mod sim;

use std::fmt::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let tasks: usize = value("--tasks")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let load: f64 = value("--load").and_then(|v| v.parse().ok()).unwrap_or(0.6);
    let seed: u64 = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(42);
    let agents = sim::fleet(seed, 40);
    let mut learning = mesh_router::LearningConfig::default();
    if let Some(w) = value("--weights") {
        let w: Vec<f64> = w.split(',').map(|x| x.parse().unwrap()).collect();
        learning = learning.weights(w[0], w[1], w[2]);
    }

    let reports: Vec<sim::Report> = sim::strategies(learning)
        .iter_mut()
        .map(|r| sim::run(r.as_mut(), &agents, tasks, load, seed))
        .collect();
    println!(
        "{} agents, {tasks} tasks, offered load {load} of capacity, seed {seed}\n",
        agents.len()
    );
    println!("| strategy | mean latency (s) | p99 latency (s) | total cost ($) | failure rate |");
    println!("|---|---|---|---|---|");
    for r in &reports {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.2}% |",
            r.strategy,
            r.mean_latency,
            r.p99_latency,
            r.total_cost,
            r.failure_rate * 100.0
        );
    }
    let learning = reports.iter().find(|r| r.strategy == "learning").unwrap();
    println!();
    for r in reports.iter().filter(|r| r.strategy != "learning") {
        println!(
            "learning vs {}: {}",
            r.strategy,
            if sim::beats(learning, r) {
                "beats"
            } else {
                "DOES NOT BEAT"
            }
        );
    }
    if let Some(path) = value("--svg") {
        std::fs::write(&path, chart(&reports)).unwrap();
        println!("\nchart written to {path}");
    }
}

/// Three bar panels (mean latency, total cost, failure rate), one bar per strategy.
fn chart(reports: &[sim::Report]) -> String {
    type Panel = (&'static str, fn(&sim::Report) -> f64, &'static str);
    let panels: [Panel; 3] = [
        ("mean latency (s)", |r| r.mean_latency, "#4c78a8"),
        ("total cost ($)", |r| r.total_cost, "#f58518"),
        ("failure rate (%)", |r| r.failure_rate * 100.0, "#e45756"),
    ];
    let (w, h, bar, gap) = (300.0, 230.0, 28.0, 8.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        w * 3.0 + 40.0,
        h + 110.0
    );
    for (p, (title, value, color)) in panels.iter().enumerate() {
        let x0 = 20.0 + p as f64 * (w + 10.0);
        let max = reports.iter().map(value).fold(0.0, f64::max).max(1e-9);
        let _ = write!(
            svg,
            r#"<text x="{}" y="16" font-weight="bold">{title}</text>"#,
            x0
        );
        for (i, r) in reports.iter().enumerate() {
            let v = value(r);
            let bh = v / max * (h - 40.0);
            let x = x0 + i as f64 * (bar + gap);
            let y = 30.0 + (h - 40.0) - bh;
            let fill = if r.strategy == "learning" {
                "#54a24b"
            } else {
                color
            };
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{y}" width="{bar}" height="{bh}" fill="{fill}"/>"#
            );
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="9">{:.2}</text>"#,
                x + bar / 2.0,
                y - 3.0,
                v
            );
            let _ = write!(
                svg,
                r#"<text transform="translate({},{}) rotate(60)" font-size="10">{}</text>"#,
                x + bar / 2.0 - 4.0,
                h + 2.0,
                r.strategy
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
