//! `mesh workflows`: definitions, runs, and everything done to a run.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::output::{Column, cell};
use super::{CliError, Context, json_arg, segment, with_query};

/// `mesh workflows …`
#[derive(Debug, clap::Subcommand)]
pub enum Workflows {
    /// Workflow definitions: register, list, show.
    #[command(subcommand)]
    Definitions(Definitions),
    /// Starts a run of a registered workflow.
    Start {
        /// The workflow's name.
        workflow: String,
        /// The run's input: JSON inline, `@file`, or `-` for standard input.
        #[arg(long, default_value = "{}")]
        input: String,
        /// A version (default the newest).
        #[arg(long)]
        version: Option<u32>,
        /// The run's id: starting again with the same id returns that run.
        #[arg(long)]
        id: Option<String>,
        /// Then follow it, as `watch` does.
        #[arg(long)]
        watch: bool,
    },
    /// Lists runs.
    List {
        /// Only runs with this status: running, waiting, succeeded, failed, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs started at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Page size (1 to 1,000).
        #[arg(long)]
        limit: Option<usize>,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows a run: status, input, output, pending interrupts.
    Describe {
        /// The run's id.
        id: String,
    },
    /// Shows a run's checkpoints.
    History {
        /// The run's id.
        id: String,
        /// Only checkpoints after this sequence number.
        #[arg(long)]
        after: Option<u64>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Follows a run until it ends or waits for a person; exits 0 if it succeeded or
    /// waits, 7 if it failed or was cancelled.
    Watch {
        /// The run's id.
        id: String,
        /// Keep following while it waits on an interrupt.
        #[arg(long)]
        through_interrupts: bool,
    },
    /// Sends a signal to a run.
    Signal {
        /// The run's id.
        id: String,
        /// The signal's name.
        name: String,
        /// Its value (JSON).
        #[arg(long, default_value = "null")]
        value: String,
    },
    /// Resumes a run waiting on an interrupt, with a value.
    Resume {
        /// The run's id.
        id: String,
        /// The interrupt's id (needed only when several are pending).
        #[arg(long)]
        interrupt: Option<String>,
        /// The value to resume with (JSON).
        #[arg(long, default_value = "null")]
        value: String,
    },
    /// Retries a failed run from its last checkpoint.
    Retry {
        /// The run's id.
        id: String,
    },
    /// Cancels runs: those named, or every run matching the filters.
    Cancel {
        /// The runs' ids.
        ids: Vec<String>,
        /// Cancel every run with this status (running or waiting).
        #[arg(long, conflicts_with = "ids")]
        status: Option<String>,
        /// Cancel every unfinished run of this workflow.
        #[arg(long, conflicts_with = "ids")]
        workflow: Option<String>,
    },
    /// Starts a new run from a checkpoint, its state changed by a JSON merge patch.
    Fork {
        /// The run's id.
        id: String,
        /// The checkpoint's sequence number.
        #[arg(long)]
        seq: u64,
        /// A JSON merge patch applied to the state.
        #[arg(long, default_value = "{}")]
        patch: String,
    },
    /// Deletes finished runs past their retention (admin).
    Prune {
        /// Instead, those finished before this time (RFC 3339).
        #[arg(long)]
        before: Option<String>,
    },
}

/// `mesh workflows definitions …`
#[derive(Debug, clap::Subcommand)]
pub enum Definitions {
    /// Registers a definition (a JSON document) as the workflow's next version.
    Register {
        /// The definition: a file, or `-` for standard input.
        file: String,
    },
    /// Lists definitions.
    List {
        /// Only versions of this workflow.
        #[arg(long)]
        name: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<usize>,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows a definition.
    Show {
        /// The workflow's name.
        name: String,
        /// A version (default the newest).
        #[arg(long)]
        version: Option<u32>,
    },
}

const RUN_COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("WORKFLOW", "/workflow"),
    ("VERSION", "/version"),
    ("STATUS", "/status"),
    ("FINISHED", "/finished_at"),
    ("ERROR", "/error"),
];

const RUN_FIELDS: &[Column] = &[
    ("id", "/id"),
    ("workflow", "/workflow"),
    ("version", "/version"),
    ("status", "/status"),
    ("input", "/input"),
    ("output", "/output"),
    ("error", "/error"),
    ("interrupts", "/interrupts"),
    ("forked from", "/forked_from"),
    ("finished", "/finished_at"),
];

const HISTORY_COLUMNS: &[Column] = &[
    ("SEQ", "/seq"),
    ("EVENT", "/event/type"),
    ("STEP", "/event/step"),
    ("ERROR", "/event/error"),
    ("AT", "/at"),
];

/// How often `watch` looks.
const POLL: Duration = Duration::from_millis(200);

impl Workflows {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        let client = &ctx.client;
        match self {
            Self::Definitions(command) => command.run(ctx).await?,
            Self::Start {
                workflow,
                input,
                version,
                id,
                watch,
            } => {
                let mut body = Map::new();
                body.insert("workflow".into(), json!(workflow));
                body.insert("input".into(), json_arg(&input)?);
                if let Some(version) = version {
                    body.insert("version".into(), json!(version));
                }
                if let Some(id) = id {
                    body.insert("id".into(), json!(id));
                }
                let run = client
                    .post("/api/v1/workflows", &Value::Object(body))
                    .await?;
                let id = run["id"].as_str().unwrap_or_default().to_owned();
                if watch {
                    return follow(ctx, &id, false).await;
                }
                ctx.out
                    .done(&run, &format!("started run {id} of {workflow}"));
            }
            Self::List {
                status,
                workflow,
                since,
                limit,
                cursor,
            } => {
                let page = client
                    .get(&runs_query(status, workflow, since, limit, cursor))
                    .await?;
                ctx.out.list(&page, &page["items"], RUN_COLUMNS);
            }
            Self::Describe { id } => {
                let run = client.get(&run_path(&id)).await?;
                ctx.out.record(&run, RUN_FIELDS);
            }
            Self::History { id, after, limit } => {
                let path = with_query(
                    &format!("{}/history", run_path(&id)),
                    &[
                        ("after", after.map(|a| a.to_string())),
                        ("limit", limit.map(|l| l.to_string())),
                    ],
                );
                let entries = client.get(&path).await?;
                ctx.out.list(&entries, &entries, HISTORY_COLUMNS);
            }
            Self::Watch {
                id,
                through_interrupts,
            } => follow(ctx, &id, through_interrupts).await?,
            Self::Signal { id, name, value } => {
                let body = json!({"name": name, "value": json_arg(&value)?});
                let answer = client
                    .post(&format!("{}/signal", run_path(&id)), &body)
                    .await?;
                ctx.out
                    .done(&answer, &format!("signal {name} sent to run {id}"));
            }
            Self::Resume {
                id,
                interrupt,
                value,
            } => {
                let value = json_arg(&value)?;
                let interrupt = match interrupt {
                    Some(interrupt) => interrupt,
                    None => only_interrupt(ctx, &id).await?,
                };
                let body = json!({"interrupt": interrupt, "value": value});
                let run = client
                    .post(&format!("{}/resume", run_path(&id)), &body)
                    .await?;
                ctx.out
                    .done(&run, &format!("resumed interrupt {interrupt} of run {id}"));
            }
            Self::Retry { id } => {
                let run = client
                    .post(&format!("{}/retry", run_path(&id)), &json!({}))
                    .await?;
                ctx.out.done(
                    &run,
                    &format!("run {id} is {}", cell(run.pointer("/status"))),
                );
            }
            Self::Cancel {
                ids,
                status,
                workflow,
            } => cancel(ctx, ids, status, workflow).await?,
            Self::Fork { id, seq, patch } => {
                let body = json!({"seq": seq, "patch": json_arg(&patch)?});
                let run = client
                    .post(&format!("{}/fork", run_path(&id)), &body)
                    .await?;
                ctx.out.done(
                    &run,
                    &format!(
                        "forked run {id} at checkpoint {seq}: new run {}",
                        cell(run.pointer("/id"))
                    ),
                );
            }
            Self::Prune { before } => {
                let body = match before {
                    Some(before) => json!({"before": before}),
                    None => json!({}),
                };
                let answer = client.post("/api/v1/workflows/prune", &body).await?;
                ctx.out.done(
                    &answer,
                    &format!("pruned {} run(s)", cell(answer.pointer("/pruned"))),
                );
            }
        }
        Ok(())
    }
}

impl Definitions {
    async fn run(self, ctx: &Context) -> Result<(), CliError> {
        const COLUMNS: &[Column] = &[("NAME", "/name"), ("VERSION", "/version"), ("ID", "/id")];
        match self {
            Self::Register { file } => {
                let definition = if file == "-" {
                    json_arg("-")?
                } else {
                    json_arg(&format!("@{file}"))?
                };
                let record = ctx
                    .client
                    .post("/api/v1/workflow-definitions", &definition)
                    .await?;
                ctx.out.done(
                    &record,
                    &format!(
                        "registered {} version {}",
                        cell(record.pointer("/name")),
                        cell(record.pointer("/version"))
                    ),
                );
            }
            Self::List {
                name,
                limit,
                cursor,
            } => {
                let path = with_query(
                    "/api/v1/workflow-definitions",
                    &[
                        ("name", name),
                        ("limit", limit.map(|l| l.to_string())),
                        ("cursor", cursor),
                    ],
                );
                let page = ctx.client.get(&path).await?;
                ctx.out.list(&page, &page["items"], COLUMNS);
            }
            Self::Show { name, version } => {
                let path = with_query(
                    &format!("/api/v1/workflow-definitions/{}", segment(&name)),
                    &[("version", version.map(|v| v.to_string()))],
                );
                let record = ctx.client.get(&path).await?;
                match ctx.out.format {
                    super::Format::Json => ctx.out.value(&record),
                    super::Format::Table => {
                        ctx.out.record(
                            &record,
                            &[("name", "/name"), ("version", "/version"), ("id", "/id")],
                        );
                        ctx.out.value(&record["definition"]);
                    }
                }
            }
        }
        Ok(())
    }
}

fn run_path(id: &str) -> String {
    format!("/api/v1/workflows/{}", segment(id))
}

fn runs_query(
    status: Option<String>,
    workflow: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
) -> String {
    with_query(
        "/api/v1/workflows",
        &[
            ("status", status),
            ("workflow", workflow),
            ("since", since),
            ("limit", limit.map(|l| l.to_string())),
            ("cursor", cursor),
        ],
    )
}

/// The one interrupt run `id` waits on; an error naming them when there are several.
async fn only_interrupt(ctx: &Context, id: &str) -> Result<String, CliError> {
    let run = ctx.client.get(&run_path(id)).await?;
    let pending: Vec<&str> = run["interrupts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str())
        .collect();
    match pending.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CliError::Usage(format!("run {id} waits on no interrupt"))),
        many => Err(CliError::Usage(format!(
            "run {id} waits on {} interrupts; name one with --interrupt: {}",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// Cancels the runs named, or — with no ids — every unfinished run the filters match.
async fn cancel(
    ctx: &Context,
    ids: Vec<String>,
    status: Option<String>,
    workflow: Option<String>,
) -> Result<(), CliError> {
    let ids = if ids.is_empty() {
        if status.is_none() && workflow.is_none() {
            return Err(CliError::Usage(
                "name the runs to cancel, or select them with --status or --workflow".into(),
            ));
        }
        matching_runs(ctx, status, workflow).await?
    } else {
        ids
    };
    let mut cancelled = Vec::new();
    for id in &ids {
        let run = ctx
            .client
            .post(&format!("{}/cancel", run_path(id)), &json!({}))
            .await?;
        cancelled.push(run);
    }
    let answer = json!({ "items": cancelled });
    match ctx.out.format {
        super::Format::Json => ctx.out.value(&answer),
        super::Format::Table => {
            ctx.out.list(&answer, &answer["items"], RUN_COLUMNS);
            println!("cancelled {} run(s)", ids.len());
        }
    }
    Ok(())
}

/// The ids of every unfinished run matching the filters, page after page.
async fn matching_runs(
    ctx: &Context,
    status: Option<String>,
    workflow: Option<String>,
) -> Result<Vec<String>, CliError> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let query = runs_query(status.clone(), workflow.clone(), None, Some(1000), cursor);
        let page = ctx.client.get(&query).await?;
        for run in page["items"].as_array().into_iter().flatten() {
            if matches!(run["status"].as_str(), Some("running" | "waiting"))
                && let Some(id) = run["id"].as_str()
            {
                ids.push(id.to_owned());
            }
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(ids),
        }
    }
}

/// Follows run `id`: a line per checkpoint, until it ends — or waits on an
/// interrupt, unless `through_interrupts`.
async fn follow(ctx: &Context, id: &str, through_interrupts: bool) -> Result<(), CliError> {
    let progress = ctx.out.progress();
    let mut seen: Option<u64> = None;
    let mut status = String::new();
    let mut steps_done = 0usize;
    let run = loop {
        let run = ctx.client.get(&run_path(id)).await?;
        let history = with_query(
            &format!("{}/history", run_path(id)),
            &[("after", seen.map(|s| s.to_string()))],
        );
        for entry in ctx
            .client
            .get(&history)
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            seen = entry["seq"].as_u64().or(seen);
            if entry.pointer("/event/type").and_then(Value::as_str) == Some("step_completed") {
                steps_done += 1;
            }
            progress.line(&describe(entry));
        }
        let now = cell(run.pointer("/status"));
        if now != status {
            progress.line(&format!("run {id}: {now}"));
            status = now;
        }
        progress.status(&format!(
            "run {id} · {} · {steps_done} step(s) done",
            status
        ));
        let waiting = run["interrupts"].as_array().is_some_and(|i| !i.is_empty());
        if matches!(status.as_str(), "succeeded" | "failed" | "cancelled")
            || (waiting && !through_interrupts)
        {
            if waiting {
                for interrupt in run["interrupts"].as_array().into_iter().flatten() {
                    progress.line(&format!(
                        "waiting: interrupt {} at step {}: {}",
                        cell(interrupt.pointer("/id")),
                        cell(interrupt.pointer("/step")),
                        cell(interrupt.pointer("/prompt"))
                    ));
                }
            }
            break run;
        }
        tokio::time::sleep(POLL).await;
    };
    progress.finish();
    ctx.out.record(&run, RUN_FIELDS);
    match run["status"].as_str() {
        Some("succeeded" | "waiting" | "running") => Ok(()),
        other => Err(CliError::Unsuccessful(format!(
            "run {id} ended {}: {}",
            other.unwrap_or("?"),
            cell(run.pointer("/error"))
        ))),
    }
}

/// One journal entry as a line.
fn describe(entry: &Value) -> String {
    let seq = cell(entry.pointer("/seq"));
    let step = cell(entry.pointer("/event/step"));
    match entry.pointer("/event/type").and_then(Value::as_str) {
        Some("started") => format!("#{seq} started"),
        Some("step_completed") => format!("#{seq} step {step} completed"),
        Some("step_failed") => format!(
            "#{seq} step {step} failed: {}",
            cell(entry.pointer("/event/error"))
        ),
        Some("retried") => format!("#{seq} retried"),
        other => format!("#{seq} {}", other.unwrap_or("?")),
    }
}
