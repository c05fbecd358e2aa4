//! What each MCP tool needs, in one table: `tools/list` shows a caller exactly the
//! tools this table lets it call, and `tools/call` checks and audits by it.

use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, CallToolResult, ErrorCode, RequestId};
use serde_json::json;

use crate::domain::{Action, AuditEntry, Decision, Principal, Resource};

/// The action and resource each of Mesh's MCP tools needs. `execute_tool` needs
/// `execute` on the named registered tool (checked again with the name).
pub(super) const NEEDS: &[(&str, Action, Resource)] = &[
    ("list_agents", Action::Read, Resource::Agents),
    ("submit_task", Action::Create, Resource::Tasks),
    ("get_task", Action::Read, Resource::Tasks),
    ("cancel_task", Action::Update, Resource::Tasks),
    ("run_collab", Action::Create, Resource::Tasks),
    ("get_collab_job", Action::Read, Resource::Tasks),
    ("cancel_collab_job", Action::Update, Resource::Tasks),
    ("index_document", Action::Create, Resource::Documents),
    ("search", Action::Read, Resource::Documents),
    ("execute_tool", Action::Execute, Resource::Tools),
    ("register_workflow", Action::Create, Resource::Definitions),
    ("start_workflow", Action::Create, Resource::Workflows),
    ("get_workflow", Action::Read, Resource::Workflows),
    ("list_workflows", Action::Read, Resource::Workflows),
    ("cancel_workflow", Action::Update, Resource::Workflows),
    ("signal_workflow", Action::Update, Resource::Workflows),
    ("resume_workflow", Action::Update, Resource::Workflows),
    ("retry_workflow", Action::Update, Resource::Workflows),
    ("workflow_history", Action::Read, Resource::Workflows),
    ("fork_workflow", Action::Update, Resource::Workflows),
    ("register_mcp_server", Action::Update, Resource::Tools),
    ("create_shared_doc", Action::Create, Resource::Documents),
    ("list_shared_docs", Action::Read, Resource::Documents),
    ("read_shared_doc", Action::Read, Resource::Documents),
    ("edit_shared_doc", Action::Update, Resource::Documents),
    ("delete_shared_doc", Action::Delete, Resource::Documents),
];

/// What the MCP tool `tool` needs; `None` for a tool not in the table (refused).
pub(super) fn needs(tool: &str) -> Option<(Action, Resource)> {
    NEEDS
        .iter()
        .find(|(name, ..)| *name == tool)
        .map(|(_, action, resource)| (*action, *resource))
}

/// Whether `who` may call the MCP tool `tool`: `execute_tool` only when some tool
/// is theirs to run (`runnable`).
pub(super) fn may_call(who: &Principal, tool: &str, runnable: &[String]) -> bool {
    match needs(tool) {
        Some((Action::Execute, Resource::Tools)) => !runnable.is_empty(),
        Some((action, resource)) => who.may(action, resource, None),
        None => false,
    }
}

/// The tool result of a refused call: `forbidden`, with what was missing.
pub(super) fn refusal(tool: &str) -> CallToolResult {
    let message = needs(tool).map_or_else(String::new, |(action, resource)| {
        format!("{action} on {resource} is not allowed to this caller")
    });
    CallToolResult::structured_error(json!({"code": "forbidden", "message": message}))
}

/// The audit record of a tool call: `mcp.<tool>` on `tool:<name>` for `execute_tool`
/// and federated tools, on the tool's resource otherwise; the JSON-RPC id as the request id.
pub(super) fn audit_entry(
    who: &Principal,
    request: &CallToolRequestParams,
    id: &RequestId,
    decision: Decision,
) -> AuditEntry {
    let named = request.arguments.as_ref().and_then(|a| a.get("tool"));
    let resource = match named {
        Some(tool) if request.name == "execute_tool" => {
            format!("tool:{}", tool.as_str().unwrap_or_default())
        }
        _ => needs(&request.name)
            .map_or_else(|| format!("tool:{}", request.name), |(_, r)| r.to_string()),
    };
    let id = serde_json::to_value(id).map(|v| v.to_string()).ok();
    let action = format!("mcp.{}", request.name);
    AuditEntry::new(who.subject.clone(), action, resource, decision, id)
}

/// What reading the MCP resource at `uri` needs `read` on: `mesh://agents` the agents,
/// every other (`mesh://tasks`, `mesh://tasks/{id}`) the tasks.
pub(super) fn resource_of(uri: &str) -> Resource {
    if uri == "mesh://agents" {
        Resource::Agents
    } else {
        Resource::Tasks
    }
}

/// The JSON-RPC error of a rate-limited call (-32029), with `retry_after_ms` in its
/// data.
pub(super) fn rate_limited(e: &crate::tools::ToolError) -> ErrorData {
    let wait = e.retry_after().unwrap_or_default().as_millis() as u64;
    ErrorData::new(
        ErrorCode(-32029),
        e.to_string(),
        Some(json!({"code": "rate_limited", "retry_after_ms": wait.max(1)})),
    )
}
