//! The GitHub adapter: repositories and issues over the GitHub REST API.

use std::time::Duration;

use mesh_embed::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolAction, ToolAdapter, ToolError};

/// GitHub's REST API as a tool. The base URL is configurable (GitHub Enterprise, or a
/// local server in tests); a token, when given, is sent as a bearer token.
#[derive(Clone)]
pub struct GitHubAdapter {
    name: String,
    base_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for GitHubAdapter {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAdapter")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GitHubAdapter {
    /// The public API: `https://api.github.com`.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.github.com";

    /// An adapter for the API at `base_url`, authenticated with `token` if given.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mesh/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            name: "github".to_owned(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    /// The same adapter under another name (`github` by default): a tenant's own.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ToolError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ToolError::Unavailable(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ToolError::Unavailable(format!("unreadable answer: {e}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            let message = body["message"].as_str().unwrap_or("no message").to_owned();
            Err(ToolError::Upstream {
                status: status.as_u16(),
                message,
            })
        }
    }
}

/// Owner and repository, checked so they cannot leave their path segment.
#[derive(Deserialize)]
struct Repo {
    owner: String,
    repo: String,
}

impl Repo {
    fn path(&self) -> Result<String, ToolError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !ok(&self.owner) || !ok(&self.repo) {
            return Err(ToolError::InvalidInput(
                "owner and repo are 1 to 100 characters of A-Z, a-z, 0-9, '-', '_', '.'".into(),
            ));
        }
        Ok(format!("/repos/{}/{}", self.owner, self.repo))
    }
}

fn parse<T: for<'de> Deserialize<'de>>(input: &Value) -> Result<T, ToolError> {
    serde_json::from_value(input.clone()).map_err(|e| ToolError::InvalidInput(e.to_string()))
}

fn repo_schema(extra: Value) -> Value {
    let mut properties = json!({
        "owner": {"type": "string", "description": "Account or organisation"},
        "repo": {"type": "string", "description": "Repository name"}
    });
    let mut required = vec![json!("owner"), json!("repo")];
    if let Value::Object(extra) = extra {
        for (name, schema) in extra {
            if schema.get("x-required").is_some() {
                required.push(json!(name));
            }
            let mut schema = schema;
            if let Some(o) = schema.as_object_mut() {
                o.remove("x-required");
            }
            properties[name] = schema;
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}

impl ToolAdapter for GitHubAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "GitHub repositories and issues (GitHub REST API)"
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["github.repos".into(), "github.issues".into()]
    }

    fn actions(&self) -> Vec<ToolAction> {
        vec![
            ToolAction::new(
                "get_repository",
                "A repository's details",
                repo_schema(json!({})),
            ),
            ToolAction::new(
                "list_issues",
                "A repository's issues",
                repo_schema(json!({
                    "state": {"type": "string", "enum": ["open", "closed", "all"]},
                    "per_page": {"type": "integer", "minimum": 1, "maximum": 100}
                })),
            ),
            ToolAction::new(
                "get_issue",
                "One issue",
                repo_schema(
                    json!({"number": {"type": "integer", "minimum": 1, "x-required": true}}),
                ),
            ),
            ToolAction::new(
                "create_issue",
                "Opens an issue (needs a token)",
                repo_schema(json!({
                    "title": {"type": "string", "minLength": 1, "x-required": true},
                    "body": {"type": "string"},
                    "labels": {"type": "array", "items": {"type": "string"}}
                })),
            ),
        ]
    }

    fn execute<'a>(
        &'a self,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let repo: Repo = parse(&input)?;
            let base = repo.path()?;
            match action {
                "get_repository" => self.call(reqwest::Method::GET, &base, None).await,
                "list_issues" => {
                    #[derive(Deserialize)]
                    struct Args {
                        #[serde(default)]
                        state: Option<String>,
                        #[serde(default)]
                        per_page: Option<u32>,
                    }
                    let args: Args = parse(&input)?;
                    let state = args.state.unwrap_or_else(|| "open".into());
                    if !matches!(state.as_str(), "open" | "closed" | "all") {
                        return Err(ToolError::InvalidInput(
                            "state is open, closed or all".into(),
                        ));
                    }
                    let per_page = args.per_page.unwrap_or(30).clamp(1, 100);
                    let path = format!("{base}/issues?state={state}&per_page={per_page}");
                    self.call(reqwest::Method::GET, &path, None).await
                }
                "get_issue" => {
                    #[derive(Deserialize)]
                    struct Args {
                        number: u64,
                    }
                    let args: Args = parse(&input)?;
                    let path = format!("{base}/issues/{}", args.number);
                    self.call(reqwest::Method::GET, &path, None).await
                }
                "create_issue" => {
                    #[derive(Deserialize)]
                    struct Args {
                        title: String,
                        #[serde(default)]
                        body: Option<String>,
                        #[serde(default)]
                        labels: Vec<String>,
                    }
                    let args: Args = parse(&input)?;
                    if args.title.trim().is_empty() {
                        return Err(ToolError::InvalidInput("title must not be empty".into()));
                    }
                    let body =
                        json!({"title": args.title, "body": args.body, "labels": args.labels});
                    self.call(reqwest::Method::POST, &format!("{base}/issues"), Some(body))
                        .await
                }
                other => Err(ToolError::UnknownAction(other.to_owned())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening issue, item 17: `Debug` printed the GitHub token.
    #[test]
    fn hardening_17_debug_never_shows_the_token() {
        let adapter = GitHubAdapter::new("https://api.github.com", Some("ghp_secret123".into()));
        let shown = format!("{adapter:?}");
        assert!(!shown.contains("ghp_secret123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
