//! The workflow tools: the same operations as REST's `/api/v1/workflows`, for models.

use rmcp::handler::server::common::schema_for_type;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::server::{Args, MeshMcp, ToolFailure, ToolResult, output};
use crate::domain::WorkflowId;
use crate::workflow::{RunFilter, RunStatus, StartRequest, WorkflowDefinition};

#[derive(Deserialize, schemars::JsonSchema)]
struct RegisterArgs {
    /// The definition: `{"name", "state", "steps"}` (see docs/workflows.md).
    definition: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RunArgs {
    /// The run's id (a UUID).
    id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ListArgs {
    /// Only runs in this status.
    status: Option<RunStatus>,
    /// Only runs of this workflow.
    workflow: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SignalArgs {
    /// The run's id.
    id: String,
    /// The signal's name.
    name: String,
    /// Its value.
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ResumeArgs {
    /// The run's id.
    id: String,
    /// The pending interrupt's id (from the run's `interrupts`).
    interrupt: String,
    /// The value the waiting step returns.
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct HistoryArgs {
    /// The run's id.
    id: String,
    /// Entries after this seq (from the first when absent).
    after: Option<u64>,
    /// Entries, 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ForkArgs {
    /// The run's id.
    id: String,
    /// The checkpoint to fork from (its seq in the history).
    seq: u64,
    /// A JSON merge patch for the state there.
    #[serde(default)]
    patch: Value,
}

fn run_id(id: &str) -> Result<WorkflowId, ToolFailure> {
    id.parse()
        .map_err(|e| ToolFailure::invalid(format!("invalid run id: {e}")))
}

#[tool_router(router = workflow_tools, vis = "pub(super)")]
impl MeshMcp {
    #[tool(
        description = "Register a workflow definition (a graph of agent tasks, tool calls, sub-workflows, waits, parallel branches and maps over a JSON state); registering a name again makes its next version.",
        input_schema = schema_for_type::<RegisterArgs>()
    )]
    async fn register_workflow(
        &self,
        Args(args): Args<RegisterArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let definition: WorkflowDefinition = serde_json::from_value(args?.definition)
            .map_err(|e| ToolFailure::invalid(format!("invalid definition: {e}")))?;
        output(self.workflows().register(who.tenant, definition).await?)
    }

    #[tool(
        description = "Start a run of a registered workflow; starting with an `id` that exists returns that run.",
        input_schema = schema_for_type::<StartRequest>()
    )]
    async fn start_workflow(
        &self,
        Args(request): Args<StartRequest>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(self.workflows().start_run(who.tenant, request?).await?)
    }

    #[tool(
        description = "Get a workflow run: its status, pending interrupts, output or error.",
        input_schema = schema_for_type::<RunArgs>()
    )]
    async fn get_workflow(
        &self,
        Args(args): Args<RunArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(self.workflows().run(who.tenant, run_id(&args?.id)?).await?)
    }

    #[tool(
        description = "List workflow runs, filtered by status and workflow, a page at a time.",
        input_schema = schema_for_type::<ListArgs>()
    )]
    async fn list_workflows(
        &self,
        Args(args): Args<ListArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        if args.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(ToolFailure::invalid("limit must be 1 to 1000"));
        }
        let filter = RunFilter {
            status: args.status,
            workflow: args.workflow,
            limit: args.limit,
            cursor: args.cursor,
            ..RunFilter::default()
        };
        let page = self.workflows().runs(who.tenant, filter).await?;
        output(json!({"items": page.items, "next": page.next}))
    }

    #[tool(
        description = "Cancel a workflow run and the tasks and sub-workflows it has in flight.",
        input_schema = schema_for_type::<RunArgs>()
    )]
    async fn cancel_workflow(
        &self,
        Args(args): Args<RunArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(
            self.workflows()
                .cancel(who.tenant, run_id(&args?.id)?)
                .await?,
        )
    }

    #[tool(
        description = "Send a signal to a workflow run; a step waiting for it takes the value (one sent early is kept).",
        input_schema = schema_for_type::<SignalArgs>()
    )]
    async fn signal_workflow(
        &self,
        Args(args): Args<SignalArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let id = run_id(&args.id)?;
        self.workflows()
            .signal(who.tenant, id, &args.name, args.value)
            .await?;
        output(json!({"accepted": true}))
    }

    #[tool(
        description = "Resume a workflow run's pending interrupt with a value (the waiting step's result).",
        input_schema = schema_for_type::<ResumeArgs>()
    )]
    async fn resume_workflow(
        &self,
        Args(args): Args<ResumeArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let interrupt = args
            .interrupt
            .parse()
            .map_err(|e| ToolFailure::invalid(format!("invalid interrupt id: {e}")))?;
        let id = run_id(&args.id)?;
        self.workflows()
            .resume(who.tenant, id, interrupt, args.value)
            .await?;
        output(json!({"accepted": true}))
    }

    #[tool(
        description = "Retry a failed workflow run from its last checkpoint (completed steps are not repeated).",
        input_schema = schema_for_type::<RunArgs>()
    )]
    async fn retry_workflow(
        &self,
        Args(args): Args<RunArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(
            self.workflows()
                .retry(who.tenant, run_id(&args?.id)?)
                .await?,
        )
    }

    #[tool(
        description = "A workflow run's history: every checkpoint with its state, from a seq on.",
        input_schema = schema_for_type::<HistoryArgs>()
    )]
    async fn workflow_history(
        &self,
        Args(args): Args<HistoryArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let id = run_id(&args.id)?;
        let entries = self
            .workflows()
            .history(who.tenant, id, args.after, args.limit)
            .await?;
        output(json!({"entries": entries}))
    }

    #[tool(
        description = "Start a new run from a checkpoint of another, its state changed by a JSON merge patch; the original stays as it is.",
        input_schema = schema_for_type::<ForkArgs>()
    )]
    async fn fork_workflow(
        &self,
        Args(args): Args<ForkArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let id = run_id(&args.id)?;
        output(
            self.workflows()
                .fork(who.tenant, id, args.seq, args.patch)
                .await?,
        )
    }
}
