//! Tool sources over MCP: `register_mcp_server`, and the federated tools — listed
//! beside Mesh's own under the names Mesh gives them, called through the tools
//! service (permission checked per tool name, rate limits, cache).

use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{CallToolResult, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::access::rate_limited;
use super::server::{Args, MeshMcp, ToolResult, output};
use crate::domain::{Action, Prefix, Principal, Resource, SourceKind};
use crate::tools::{Caller, SourceInput, ToolError};

#[derive(Deserialize, schemars::JsonSchema)]
struct RegisterArgs {
    /// The source's name: 1-32 of a-z, 0-9, _ and -.
    name: String,
    /// The MCP server's Streamable HTTP endpoint.
    url: String,
    /// Headers to send it (credentials are sealed and never shown again).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// `always`, `on_collision` (default) or `never`: when its tools are named
    /// `<name>__<tool>`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    prefix: Prefix,
    /// Longest a call may take, in milliseconds (default 30000).
    call_timeout_ms: Option<u64>,
}

#[tool_router(router = source_tools, vis = "pub(super)")]
impl MeshMcp {
    #[tool(
        description = "Register (or replace) an external MCP server for the tenant: its tools join Mesh's, named by the prefix rule.",
        input_schema = schema_for_type::<RegisterArgs>()
    )]
    async fn register_mcp_server(
        &self,
        Args(args): Args<RegisterArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        crate::http::permit(&who, Action::Update, Resource::Tools, None)?;
        let input = SourceInput {
            kind: SourceKind::Mcp,
            url: Some(args.url),
            headers: args.headers,
            token: None,
            prefix: args.prefix,
            call_timeout_ms: args.call_timeout_ms,
        };
        let (view, created) = self.tools().register(who.tenant, &args.name, input).await?;
        output(json!({ "source": view, "created": created }))
    }
}

impl MeshMcp {
    /// The tools of the caller's tenant it may run (what `execute_tool` reaches).
    pub(super) async fn runnable(&self, who: &Principal) -> Vec<String> {
        let listed = self.tools().list(who.tenant).await.unwrap_or_default();
        listed
            .into_iter()
            .filter(|t| who.may(Action::Execute, Resource::Tools, Some(&t.name)))
            .map(|t| t.name)
            .collect()
    }

    /// The federated tools `who` may call.
    pub(super) async fn federated_tools(&self, who: &Principal) -> Vec<Tool> {
        let mut federated = self.tools().federated(who.tenant).await.unwrap_or_default();
        federated.retain(|t| who.may(Action::Execute, Resource::Tools, Some(&t.name)));
        federated
    }

    /// Calls the federated tool `name` for `who`: the server's result; a rate limit
    /// or an unknown tool as a JSON-RPC error, any other failure as a result with
    /// `isError`.
    pub(super) async fn call_federated(
        &self,
        who: &Principal,
        name: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = Caller {
            tenant: who.tenant,
            key: Some(&who.subject),
        };
        match self.tools().call_federated(caller, name, arguments).await {
            Ok(result) => Ok(result),
            Err(ToolError::UnknownTool(_)) => Err(ErrorData::invalid_params(
                format!("no tool named {name}"),
                None,
            )),
            Err(e @ ToolError::RateLimited { .. }) => Err(rate_limited(&e)),
            Err(e) => Ok(CallToolResult::structured_error(
                json!({"code": e.code(), "message": e.to_string()}),
            )),
        }
    }
}
