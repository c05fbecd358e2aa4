//! `mesh tools` and `mesh docs`: the tool registry, and the knowledge base.

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
        }
        Ok(())
    }
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
