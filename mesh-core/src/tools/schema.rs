//! The `schema` tool (feature `postgres`): a PostgreSQL database's tables, columns,
//! constraints and indexes, read from the catalogs — what a database-analysing agent
//! needs, and nothing that could change the database: a fixed set of catalog queries
//! with bound parameters, each in a read-only transaction with a statement timeout.

use std::time::Duration;

use mesh_embed::BoxFuture;
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{ToolAction, ToolAdapter, ToolError};

/// The longest a catalog query may run.
pub const SCHEMA_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL database's schema, read-only, as a tool.
#[derive(Clone)]
pub struct SchemaAdapter {
    name: String,
    pool: PgPool,
}

impl std::fmt::Debug for SchemaAdapter {
    /// Never shows the connection's options (the URL may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaAdapter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SchemaAdapter {
    /// The tool `name` over the database at `url`, connecting when first used (at most
    /// two connections). A bad URL is refused here; a database that does not answer
    /// fails the calls, not the agent.
    pub fn connect_lazy(name: impl Into<String>, url: &str) -> Result<Self, ToolError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(SCHEMA_QUERY_TIMEOUT)
            .connect_lazy(url)
            .map_err(|e| ToolError::InvalidInput(format!("a bad database URL: {e}")))?;
        Ok(Self {
            name: name.into(),
            pool,
        })
    }

    async fn run(&self, action: &str, input: Value) -> Result<Value, ToolError> {
        let schema = input["schema"].as_str().unwrap_or("public").to_owned();
        let unavailable = |e: sqlx::Error| ToolError::Unavailable(format!("the database: {e}"));
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(SCHEMA_QUERY_TIMEOUT.as_millis().to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let answer = match action {
            "tables" => {
                let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
                    "SELECT c.relname::text, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END, \
                            GREATEST(c.reltuples, 0)::bigint, obj_description(c.oid, 'pg_class') \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1",
                )
                .bind(&schema)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                let tables: Vec<Value> = rows
                    .into_iter()
                    .map(|(name, kind, rows, comment)| {
                        json!({"name": name, "kind": kind, "rows_estimate": rows, "comment": comment})
                    })
                    .collect();
                json!({"schema": schema, "tables": tables})
            }
            "describe" => {
                let table = input["table"]
                    .as_str()
                    .ok_or_else(|| ToolError::InvalidInput("`table` is required".into()))?;
                let columns: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                    "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
                     FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
                     ORDER BY ordinal_position",
                )
                .bind(&schema)
                .bind(table)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                if columns.is_empty() {
                    return Err(ToolError::InvalidInput(format!(
                        "no table {schema}.{table}"
                    )));
                }
                let constraints: Vec<(String, String)> = sqlx::query_as(
                    "SELECT con.conname::text, pg_get_constraintdef(con.oid) \
                     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2 ORDER BY 1",
                )
                .bind(&schema)
                .bind(table)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                let indexes: Vec<(String, String)> = sqlx::query_as(
                    "SELECT indexname::text, indexdef FROM pg_indexes \
                     WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
                )
                .bind(&schema)
                .bind(table)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                json!({
                    "schema": schema,
                    "table": table,
                    "columns": columns.into_iter().map(|(name, kind, nullable, default)| {
                        json!({"name": name, "type": kind, "nullable": nullable == "YES", "default": default})
                    }).collect::<Vec<_>>(),
                    "constraints": constraints.into_iter().map(|(name, definition)| {
                        json!({"name": name, "definition": definition})
                    }).collect::<Vec<_>>(),
                    "indexes": indexes.into_iter().map(|(name, definition)| {
                        json!({"name": name, "definition": definition})
                    }).collect::<Vec<_>>(),
                })
            }
            other => return Err(ToolError::UnknownAction(other.to_owned())),
        };
        // Read-only: nothing to keep.
        let _ = tx.rollback().await;
        Ok(answer)
    }
}

impl ToolAdapter for SchemaAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "A PostgreSQL database's schema, read-only: tables, then a table's columns, constraints and indexes"
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["database-schema".into()]
    }

    fn actions(&self) -> Vec<ToolAction> {
        let schema = json!({"type": "string", "description": "The schema (default public)"});
        vec![
            ToolAction::new(
                "tables",
                "The schema's tables and views, with estimated row counts",
                json!({"type": "object", "properties": {"schema": schema}}),
            )
            .idempotent(),
            ToolAction::new(
                "describe",
                "A table's columns, constraints (keys, foreign keys, checks) and indexes",
                json!({"type": "object", "properties": {"schema": schema, "table": {"type": "string"}}, "required": ["table"]}),
            )
            .idempotent(),
        ]
    }

    fn execute<'a>(
        &'a self,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(self.run(action, input))
    }
}
