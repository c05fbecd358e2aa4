//! Mesh embedded in a program: an engine, an agent running in this process, one task.
//! `cargo run -p mesh-agents-core --example embedded`

use mesh_core::protocol::{Hello, TaskError};
use mesh_core::{Engine, TaskSpec, TenantId};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::in_memory().await;
    let tenant = TenantId::new();

    // An agent is a function: it gets each task routed to it and returns the output.
    let hello = Hello::new("shouter", ["shout"]);
    let _agent = engine
        .connect_local(tenant, hello, |task| async move {
            let text = task.input["text"]
                .as_str()
                .ok_or(TaskError::permanent("no text"))?;
            Ok(json!({ "text": text.to_uppercase() }))
        })
        .await?;

    let task = TaskSpec::new("shout", json!({ "text": "hello, mesh" }));
    let task = engine.submit(tenant, task).await?;
    let done = engine.wait(tenant, task.id).await?;
    println!("task {} {}: {}", done.id, done.status(), json!(done.output));
    Ok(())
}
