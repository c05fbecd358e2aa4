//! `mesh tasks`: submit work, follow it, cancel it.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::output::Column;
use super::{CliError, Context, json_arg, segment, with_query};

/// `mesh tasks …`
#[derive(Debug, clap::Subcommand)]
pub enum Tasks {
    /// Submits a task; it is routed to an agent that can do `kind`.
    Submit {
        /// What kind of work it is (agents advertise the kinds they do).
        kind: String,
        /// Its input: JSON inline, `@file`, or `-` for standard input.
        #[arg(long, default_value = "{}")]
        input: String,
        /// low, normal, high or critical.
        #[arg(long)]
        priority: Option<String>,
        /// A capability the agent must have (repeat for several).
        #[arg(long = "require")]
        required_capabilities: Vec<String>,
        /// Milliseconds an attempt may take.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Attempts before it fails.
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Then follow it to its end, as `watch` does.
        #[arg(long)]
        watch: bool,
    },
    /// Shows a task.
    Get {
        /// The task's id.
        id: String,
    },
    /// Lists the tenant's tasks.
    List {
        /// Only tasks with this status (pending, in_progress, completed, …).
        #[arg(long)]
        status: Option<String>,
        /// Only tasks of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Page size (1 to 1,000).
        #[arg(long)]
        limit: Option<usize>,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Follows a task to its end; exits 0 if it completed, 7 if not.
    Watch {
        /// The task's id.
        id: String,
    },
    /// Cancels a task.
    Cancel {
        /// The task's id.
        id: String,
    },
}

/// The columns of a task table.
pub(super) const COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("KIND", "/kind"),
    ("STATUS", "/status"),
    ("PRIORITY", "/priority"),
    ("ATTEMPTS", "/attempts"),
    ("AGENT", "/agent_id"),
    ("CREATED", "/created_at"),
];

const FIELDS: &[Column] = &[
    ("id", "/id"),
    ("kind", "/kind"),
    ("status", "/status"),
    ("priority", "/priority"),
    ("agent", "/agent_id"),
    ("attempts", "/attempts"),
    ("progress", "/progress"),
    ("input", "/input"),
    ("output", "/output"),
    ("error", "/error"),
    ("created", "/created_at"),
    ("updated", "/updated_at"),
];

/// How often `watch` looks.
const POLL: Duration = Duration::from_millis(200);

impl Tasks {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::Submit {
                kind,
                input,
                priority,
                required_capabilities,
                timeout_ms,
                max_attempts,
                watch,
            } => {
                let mut spec = Map::new();
                spec.insert("kind".into(), json!(kind));
                spec.insert("input".into(), json_arg(&input)?);
                if let Some(priority) = priority {
                    spec.insert("priority".into(), json!(priority));
                }
                if !required_capabilities.is_empty() {
                    spec.insert("required_capabilities".into(), json!(required_capabilities));
                }
                if let Some(ms) = timeout_ms {
                    spec.insert("timeout_ms".into(), json!(ms));
                }
                if let Some(n) = max_attempts {
                    spec.insert("max_attempts".into(), json!(n));
                }
                let task = ctx
                    .client
                    .post("/api/v1/tasks", &Value::Object(spec))
                    .await?;
                if watch {
                    let id = task["id"].as_str().unwrap_or_default().to_owned();
                    return follow(ctx, &id).await;
                }
                ctx.out.done(
                    &task,
                    &format!("submitted task {} ({})", cell(&task, "/id"), kind),
                );
            }
            Self::Get { id } => {
                let task = ctx.client.get(&task_path(&id)).await?;
                ctx.out.record(&task, FIELDS);
            }
            Self::List {
                status,
                kind,
                limit,
                cursor,
            } => {
                let path = with_query(
                    "/api/v1/tasks",
                    &[
                        ("status", status),
                        ("kind", kind),
                        ("limit", limit.map(|l| l.to_string())),
                        ("cursor", cursor),
                    ],
                );
                let page = ctx.client.get(&path).await?;
                ctx.out.list(&page, &page["items"], COLUMNS);
            }
            Self::Watch { id } => follow(ctx, &id).await?,
            Self::Cancel { id } => {
                let task = ctx
                    .client
                    .post(&format!("{}/cancel", task_path(&id)), &json!({}))
                    .await?;
                ctx.out
                    .done(&task, &format!("task {id} is {}", cell(&task, "/status")));
            }
        }
        Ok(())
    }
}

fn task_path(id: &str) -> String {
    format!("/api/v1/tasks/{}", segment(id))
}

fn cell(value: &Value, at: &str) -> String {
    super::output::cell(value.pointer(at))
}

/// Follows task `id` until it ends, a line per change; the task at the end.
async fn follow(ctx: &Context, id: &str) -> Result<(), CliError> {
    let progress = ctx.out.progress();
    let mut last = String::new();
    let task = loop {
        let task = ctx.client.get(&task_path(id)).await?;
        let status = cell(&task, "/status");
        let now = match task.get("progress").and_then(Value::as_f64) {
            Some(p) if status == "in_progress" => format!("{status} {:.0}%", p * 100.0),
            _ => status.clone(),
        };
        if now != last {
            let agent = match task.get("agent_id").and_then(Value::as_str) {
                Some(agent) => format!(" (agent {agent})"),
                None => String::new(),
            };
            progress.line(&format!("task {id}: {now}{agent}"));
            last = now;
        }
        progress.status(&format!(
            "task {id} · {last} · attempt {}",
            cell(&task, "/attempts")
        ));
        if matches!(
            status.as_str(),
            "completed" | "failed" | "cancelled" | "timed_out"
        ) {
            break task;
        }
        tokio::time::sleep(POLL).await;
    };
    progress.finish();
    ctx.out.record(&task, FIELDS);
    match task["status"].as_str() {
        Some("completed") => Ok(()),
        other => Err(CliError::Unsuccessful(format!(
            "task {id} ended {}: {}",
            other.unwrap_or("?"),
            cell(&task, "/error")
        ))),
    }
}
