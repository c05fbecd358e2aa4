//! `mesh tools` and `mesh docs`: the tools and their sources, and the knowledge base.

use serde_json::{Value, json};

use super::output::Column;
use super::{CliError, Context, json_arg, segment};

/// `mesh tools …`
#[derive(Debug, clap::Subcommand)]
pub enum Tools {
    /// Lists the tools and their actions.
    List,
    /// Calls one action of a tool.
    Call {
        /// The tool.
        tool: String,
        /// The action.
        action: String,
        /// Its input: JSON inline, `@file`, or `-` for standard input.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Lists the tool sources: MCP servers and adapters, with their health.
    Sources,
    /// Registers (or replaces) an MCP server over Streamable HTTP, or a GitHub adapter
    /// with the tenant's own token.
    Add {
        /// The source's name: 1-32 of a-z, 0-9, _ and -.
        name: String,
        /// The MCP server's URL (or GitHub's API base URL with --github).
        #[arg(long, required_unless_present = "github")]
        endpoint: Option<String>,
        /// A header for the MCP server, `name: value` (repeatable); sealed at rest.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// `always`, `on_collision` (default) or `never`: when tools are named
        /// `<name>__<tool>`.
        #[arg(long)]
        prefix: Option<String>,
        /// Longest a call may take, in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// A GitHub adapter instead of an MCP server.
        #[arg(long)]
        github: bool,
        /// The GitHub token (`GITHUB_TOKEN`); sealed at rest.
        #[arg(
            long,
            env = "GITHUB_TOKEN",
            hide_env_values = true,
            requires = "github"
        )]
        token: Option<String>,
    },
    /// Removes a tool source: its tools are gone at once.
    Remove {
        /// The source.
        name: String,
    },
}

/// `mesh docs …`
#[derive(Debug, clap::Subcommand)]
pub enum Docs {
    /// Indexes a document (chunked and embedded by the worker).
    Index {
        /// The collection.
        collection: String,
        /// The document's id (indexing it again replaces it).
        document_id: String,
        /// The text: a file, or `-` for standard input.
        #[arg(long, conflicts_with = "text")]
        file: Option<String>,
        /// The text, inline.
        #[arg(long)]
        text: Option<String>,
        /// Metadata (a JSON object) kept with each chunk.
        #[arg(long, default_value = "{}")]
        metadata: String,
    },
    /// Searches a collection by meaning.
    Search {
        /// The collection.
        collection: String,
        /// What to look for.
        query: String,
        /// How many hits.
        #[arg(long, short = 'k')]
        k: Option<usize>,
    },
}

impl Tools {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::List => {
                let tools = ctx.client.get("/api/v1/tools").await?;
                // One row per action: what `call` takes.
                let rows: Vec<Value> = tools
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|tool| {
                        tool["actions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(move |action| {
                                json!({"tool": tool["name"], "action": action["name"],
                                    "description": action["description"]})
                            })
                    })
                    .collect();
                const COLUMNS: &[Column] = &[
                    ("TOOL", "/tool"),
                    ("ACTION", "/action"),
                    ("DESCRIPTION", "/description"),
                ];
                ctx.out.list(&tools, &Value::Array(rows), COLUMNS);
            }
            Self::Call {
                tool,
                action,
                input,
            } => {
                let body = json!({"action": action, "input": json_arg(&input)?});
                let answer = ctx
                    .client
                    .post(&format!("/api/v1/tools/{}/execute", segment(&tool)), &body)
                    .await?;
                ctx.out.value(&answer["output"]);
            }
            Self::Sources => {
                let sources = ctx.client.get("/api/v1/tool-sources").await?;
                const COLUMNS: &[Column] = &[
                    ("NAME", "/name"),
                    ("KIND", "/kind"),
                    ("STATE", "/status/state"),
                    ("URL", "/url"),
                    ("TOOLS", "/tools"),
                    ("CONFLICTS", "/conflicts"),
                ];
                ctx.out.list(&sources, &sources["items"], COLUMNS);
            }
            Self::Add {
                name,
                endpoint,
                headers,
                prefix,
                timeout_ms,
                github,
                token,
            } => {
                let mut body = json!({"kind": if github { "github" } else { "mcp" }});
                if let Some(url) = endpoint {
                    body["url"] = json!(url);
                }
                if !headers.is_empty() {
                    body["headers"] = Value::Object(header_map(&headers)?);
                }
                if let Some(prefix) = prefix {
                    body["prefix"] = json!(prefix);
                }
                if let Some(timeout) = timeout_ms {
                    body["call_timeout_ms"] = json!(timeout);
                }
                if let Some(token) = token {
                    body["token"] = json!(token);
                }
                let path = format!("/api/v1/tool-sources/{}", segment(&name));
                let answer = ctx
                    .client
                    .call(reqwest::Method::PUT, &path, Some(&body))
                    .await?;
                let tools = super::output::cell(answer.pointer("/tools"));
                ctx.out
                    .done(&answer, &format!("tool source {name} registered: {tools}"));
            }
            Self::Remove { name } => {
                let path = format!("/api/v1/tool-sources/{}", segment(&name));
                let answer = ctx.client.delete(&path).await?;
                ctx.out
                    .done(&answer, &format!("tool source {name} removed"));
            }
        }
        Ok(())
    }
}

/// `name: value` headers as a JSON object.
fn header_map(headers: &[String]) -> Result<serde_json::Map<String, Value>, CliError> {
    headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) => Ok((name.trim().to_owned(), json!(value.trim()))),
            None => Err(CliError::Usage(format!(
                "a header is `name: value`, not {h:?}"
            ))),
        })
        .collect()
}

impl Docs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::Index {
                collection,
                document_id,
                file,
                text,
                metadata,
            } => {
                let text = match (file, text) {
                    (_, Some(text)) => text,
                    (Some(file), None) if file == "-" => std::io::read_to_string(std::io::stdin())
                        .map_err(|e| CliError::Usage(format!("standard input: {e}")))?,
                    (Some(file), None) => std::fs::read_to_string(&file)
                        .map_err(|e| CliError::Usage(format!("{file}: {e}")))?,
                    (None, None) => {
                        return Err(CliError::Usage("give the text: --text or --file".into()));
                    }
                };
                let body = json!({"collection": collection, "document_id": document_id,
                    "text": text, "metadata": json_arg(&metadata)?});
                let answer = ctx.client.post("/api/v1/documents", &body).await?;
                ctx.out.done(
                    &answer,
                    &format!(
                        "document {document_id} queued for indexing in {collection} (job {})",
                        super::output::cell(answer.pointer("/job_id"))
                    ),
                );
            }
            Self::Search {
                collection,
                query,
                k,
            } => {
                let mut body = json!({"collection": collection, "query": query});
                if let Some(k) = k {
                    body["k"] = json!(k);
                }
                let answer = ctx.client.post("/api/v1/search", &body).await?;
                const COLUMNS: &[Column] = &[
                    ("SCORE", "/score"),
                    ("DOCUMENT", "/document_id"),
                    ("CHUNK", "/chunk"),
                    ("TEXT", "/text"),
                ];
                ctx.out.list(&answer, &answer["hits"], COLUMNS);
            }
        }
        Ok(())
    }
}
