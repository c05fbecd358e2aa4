//! Replays an editing trace through the text CRDT and checks the result.
//!
//! `cargo run --release -p mesh-crdt --example replay -- FILE.json.gz`
//!
//! Prints `replay NAME: PATCHES patches, LEN chars, MS ms, ENCODED bytes` (MS: the best
//! of three replays) and exits non-zero if the final text differs from `endContent`.

mod trace;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: replay FILE.json.gz");
        return ExitCode::from(2);
    };
    let trace = match trace::Trace::load(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::from(2);
        }
    };
    let name = std::path::Path::new(&path)
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| {
            n.trim_end_matches(".gz")
                .trim_end_matches(".json")
                .to_owned()
        })
        .unwrap_or_default();
    // The best of three replays: the first also pays for the allocator's state after
    // parsing the trace.
    let (text, elapsed, encoded) = trace::replay(&trace, 3);
    println!(
        "replay {name}: {} patches, {} chars, {:.1} ms, {encoded} bytes",
        trace.patches(),
        text.chars().count(),
        elapsed.as_secs_f64() * 1000.0
    );
    if text != trace.end() {
        eprintln!("replay {name}: the final text differs from endContent");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
