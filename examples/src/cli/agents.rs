//! `mesh agents`: who is connected, and what the LLM agents spent.

use super::output::Column;
use super::{CliError, Context, segment, with_query};

/// `mesh agents …`
#[derive(Debug, clap::Subcommand)]
pub enum Agents {
    /// Lists the tenant's agents.
    List {
        /// Only agents with this status (active, draining, offline, …).
        #[arg(long)]
        status: Option<String>,
        /// Only agents with this capability.
        #[arg(long)]
        capability: Option<String>,
        /// Page size (1 to 1,000).
        #[arg(long)]
        limit: Option<usize>,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows one agent.
    Show {
        /// The agent's id.
        id: String,
    },
    /// Deregisters an agent: its connection is closed and its tasks reassigned.
    Deregister {
        /// The agent's id.
        id: String,
    },
    /// What the tenant's LLM agents spent: tasks, turns, tool calls, tokens, dollars.
    Usage,
}

const USAGE_COLUMNS: &[Column] = &[
    ("AGENT", "/agent"),
    ("COMPLETED", "/completed"),
    ("FAILED", "/failed"),
    ("TURNS", "/turns"),
    ("TOOL CALLS", "/tool_calls"),
    ("TOKENS IN", "/input_tokens"),
    ("TOKENS OUT", "/output_tokens"),
    ("DOLLARS", "/dollars"),
];

const COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("STATUS", "/status"),
    ("CAPABILITIES", "/capabilities"),
    ("CONCURRENCY", "/max_concurrency"),
    ("COST/H", "/cost_per_hour"),
    ("LAST SEEN", "/last_seen_at"),
];

impl Agents {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::List {
                status,
                capability,
                limit,
                cursor,
            } => {
                let path = with_query(
                    "/api/v1/agents",
                    &[
                        ("status", status),
                        ("capability", capability),
                        ("limit", limit.map(|l| l.to_string())),
                        ("cursor", cursor),
                    ],
                );
                let page = ctx.client.get(&path).await?;
                ctx.out.list(&page, &page["items"], COLUMNS);
            }
            Self::Show { id } => {
                let agent = ctx
                    .client
                    .get(&format!("/api/v1/agents/{}", segment(&id)))
                    .await?;
                ctx.out.record(
                    &agent,
                    &[
                        ("id", "/id"),
                        ("name", "/name"),
                        ("status", "/status"),
                        ("capabilities", "/capabilities"),
                        ("labels", "/labels"),
                        ("concurrency", "/max_concurrency"),
                        ("cost per hour", "/cost_per_hour"),
                        ("registered", "/created_at"),
                        ("last seen", "/last_seen_at"),
                    ],
                );
            }
            Self::Usage => {
                let report = ctx.client.get("/api/v1/agents/usage").await?;
                let mut rows: Vec<serde_json::Value> = report["agents"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, totals)| {
                        let mut row = totals.clone();
                        row["agent"] = name.as_str().into();
                        row
                    })
                    .collect();
                let mut total = report["total"].clone();
                total["agent"] = "(all)".into();
                rows.push(total);
                ctx.out
                    .list(&report, &serde_json::Value::Array(rows), USAGE_COLUMNS);
            }
            Self::Deregister { id } => {
                let answer = ctx
                    .client
                    .delete(&format!("/api/v1/agents/{}", segment(&id)))
                    .await?;
                ctx.out.done(&answer, &format!("deregistered agent {id}"));
            }
        }
        Ok(())
    }
}
