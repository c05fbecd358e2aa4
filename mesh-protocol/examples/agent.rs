//! A reference agent: connects to a mesh, registers its capabilities, runs tasks
//! through a function, and delegates. Copy it to write your own.
//!
//! ```sh
//! cargo run --release -p mesh-examples --bin mesh -- up          # prints an admin key
//! MESH_API_KEY=<key> cargo run -p mesh-protocol --features ws --example agent -- ws://127.0.0.1:7070/ws
//! ```
//!
//! It handles three kinds: `uppercase` (`{"text": …}` → upper case), `word-count`, and
//! `shout`, which delegates an `uppercase` sub-task to the mesh and adds `!`.

use mesh_protocol::ws::{AgentContext, ClientConfig, TaskError, TaskFuture, run_agent};
use mesh_protocol::{Hello, TaskAssign, TaskStatus};
use serde_json::{Value, json};

/// What this agent does with one task.
async fn handle(task: TaskAssign, ctx: AgentContext) -> Result<Value, TaskError> {
    let text = task.input["text"]
        .as_str()
        .ok_or_else(|| TaskError::permanent("input.text must be a string"))?;
    match task.kind.as_str() {
        "uppercase" => Ok(json!({"text": text.to_uppercase()})),
        "word-count" => {
            ctx.progress(0.5, Some("counting".into()))
                .await
                .map_err(|e| TaskError::retryable(e.to_string()))?;
            Ok(json!({"words": text.split_whitespace().count()}))
        }
        "shout" => {
            // Delegation: ask the mesh for a sub-task and wait for its result.
            let sub = ctx
                .delegate("uppercase", json!({"text": text}), vec![])
                .await
                .map_err(|e| TaskError::retryable(e.to_string()))?;
            match (sub.status, sub.output) {
                (TaskStatus::Completed, Some(out)) => {
                    Ok(json!({"text": format!("{}!", out["text"].as_str().unwrap_or(""))}))
                }
                (status, _) => Err(TaskError::retryable(format!(
                    "sub-task ended {status:?}: {}",
                    sub.error.unwrap_or_default()
                ))),
            }
        }
        other => Err(TaskError::permanent(format!("cannot do {other}"))),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:7070/ws".into());
    let key = std::env::var("MESH_API_KEY")
        .map_err(|_| "set MESH_API_KEY to a key with the agent scope")?;
    let mut hello = Hello::new("reference-agent", ["uppercase", "word-count", "shout"]);
    hello.max_concurrency = Some(4);
    hello.cost_per_hour = Some(0.1);
    let config = ClientConfig::new(url).api_key(key);
    let handler =
        |task: TaskAssign, ctx: AgentContext| -> TaskFuture { Box::pin(handle(task, ctx)) };
    println!("reference agent running; Ctrl-C to stop");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    run_agent(config, hello, handler, shutdown).await?;
    Ok(())
}
