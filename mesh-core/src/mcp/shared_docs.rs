//! The shared-document tools: the same operations as REST's `/api/v1/shared-docs`, for
//! models — a model reads a document whole and edits it in plain terms (positions and
//! text, paths and values); agents that keep a replica use the hub's `doc_*` messages.

use rmcp::handler::server::common::schema_for_type;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;
use serde_json::json;

use super::server::{Args, MeshMcp, ToolFailure, ToolResult, output};
use crate::domain::{DocKind, SharedDocId};
use crate::shared_docs::Edit;

#[derive(Deserialize, schemars::JsonSchema)]
struct CreateArgs {
    /// A display name, 1 to 100 characters.
    name: String,
    /// `text` or `state`.
    #[schemars(with = "String")]
    kind: DocKind,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct DocArgs {
    /// The document's id (a UUID).
    id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ListArgs {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct EditArgs {
    /// The document's id.
    id: String,
    /// Applied in order, all or none: `{"op": "splice", "pos", "delete", "insert"}` for
    /// text; `set` (`path`, `value`), `add` (`path`, `delta`), `insert` and `remove`
    /// (`path`, `element`) for state.
    edits: Vec<Edit>,
}

fn doc_id(id: &str) -> Result<SharedDocId, ToolFailure> {
    id.parse()
        .map_err(|e| ToolFailure::invalid(format!("invalid document id: {e}")))
}

#[tool_router(router = doc_tools, vis = "pub(super)")]
impl MeshMcp {
    #[tool(
        description = "Create a shared document that agents and people edit live: `text`, or `state` (paths holding values, counters and sets).",
        input_schema = schema_for_type::<CreateArgs>()
    )]
    async fn create_shared_doc(
        &self,
        Args(args): Args<CreateArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        output(
            self.docs()
                .create(who.tenant, &args.name, args.kind)
                .await?,
        )
    }

    #[tool(
        description = "List the tenant's shared documents, a page at a time.",
        input_schema = schema_for_type::<ListArgs>()
    )]
    async fn list_shared_docs(
        &self,
        Args(args): Args<ListArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        if args.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(ToolFailure::invalid("limit must be 1 to 1000"));
        }
        let limit = args.limit.unwrap_or(100);
        let (items, next) = self.docs().list(who.tenant, limit, args.cursor).await?;
        output(json!({"items": items, "next": next}))
    }

    #[tool(
        description = "Read a shared document: its text, or its state as an object of paths and values.",
        input_schema = schema_for_type::<DocArgs>()
    )]
    async fn read_shared_doc(
        &self,
        Args(args): Args<DocArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        output(self.docs().read(who.tenant, doc_id(&args?.id)?).await?)
    }

    #[tool(
        description = "Edit a shared document (all edits or none); everyone following it sees the change. Returns the new content.",
        input_schema = schema_for_type::<EditArgs>()
    )]
    async fn edit_shared_doc(
        &self,
        Args(args): Args<EditArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let args = args?;
        let id = doc_id(&args.id)?;
        output(self.docs().edit(who.tenant, id, args.edits).await?)
    }

    #[tool(
        description = "Delete a shared document and its history.",
        input_schema = schema_for_type::<DocArgs>()
    )]
    async fn delete_shared_doc(
        &self,
        Args(args): Args<DocArgs>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let who = self.allowed(&context)?;
        let id = doc_id(&args?.id)?;
        let deleted = self.docs().delete(who.tenant, id).await?;
        if !deleted {
            return Err(crate::shared_docs::DocError::NotFound(id).into());
        }
        output(json!({"deleted": true}))
    }
}
