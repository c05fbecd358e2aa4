//! The credential gate as axum middleware, for the routes of REST and MCP over HTTP:
//! authentication, and the audit record of every refused request and every change.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::domain::{AuditEntry, Decision};

/// What a handler made, for the audit record of a request that creates something
/// (`task:<id>`): put it in the response's extensions.
#[derive(Debug, Clone)]
pub struct Created(pub String);

/// Whether an allowed request on `route` is audited: every change, but not reads
/// (`GET`, `POST /api/v1/search` and `/api/v1/embeddings`) nor MCP's own messages
/// (its tool calls are audited one by one).
fn audited(method: &Method, route: &str) -> bool {
    const READING_POSTS: [&str; 2] = ["/api/v1/search", "/api/v1/embeddings"];
    method != Method::GET && !READING_POSTS.contains(&route) && !route.starts_with("/mcp")
}

/// Middleware: authenticates and rate-limits through the gate, and hands the
/// [`Principal`](crate::Principal) on in the request's extensions. Every refused
/// request and every allowed change is queued for the audit log's writer: the request
/// never waits for a store write.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Cheap handles only: the audit strings are made when a record is written.
    let seen = Seen {
        method: request.method().clone(),
        uri: request.uri().clone(),
        route: request.extensions().get::<MatchedPath>().cloned(),
        request_id: request.headers().get("x-request-id").cloned(),
    };
    let audit = &state.gate.access().audit;
    let who = match state.gate.check(&request).await {
        Ok(principal) => principal,
        Err(e) => {
            let tenant = state.gate.refusals_tenant();
            audit.record_later(&tenant, seen.entry("anonymous", None, Decision::Refused));
            return ApiError::from(e).into_response();
        }
    };
    let (subject, tenant) = (who.subject.clone(), who.tenant);
    request.extensions_mut().insert(who);
    let response = next.run(request).await;
    let made = response.extensions().get::<Created>();
    if response.status() == axum::http::StatusCode::FORBIDDEN {
        let entry = seen.entry(&subject, made, Decision::Refused);
        audit.record_later(&tenant.to_string(), entry);
    } else if audited(&seen.method, seen.route()) {
        let entry = seen.entry(&subject, made, Decision::Allowed);
        audit.record_later(&tenant.to_string(), entry);
    }
    response
}

/// What the middleware keeps of a request for its audit record.
struct Seen {
    method: Method,
    uri: axum::http::Uri,
    route: Option<MatchedPath>,
    request_id: Option<axum::http::HeaderValue>,
}

impl Seen {
    fn route(&self) -> &str {
        self.route
            .as_ref()
            .map_or_else(|| self.uri.path(), MatchedPath::as_str)
    }

    fn entry(&self, actor: &str, made: Option<&Created>, decision: Decision) -> AuditEntry {
        let resource = match made {
            Some(Created(made)) => made.clone(),
            None => resource_of(self.route(), self.uri.path()),
        };
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let action = action_of(&self.method, self.route());
        AuditEntry::new(actor, action, resource, decision, request_id)
    }
}

/// The audit action of a route: its fixed segments after `/api/v1`, and the method's
/// verb where the route does not end in one (`POST /api/v1/tasks` → `tasks.create`,
/// `POST /api/v1/tasks/{id}/cancel` → `tasks.cancel`).
fn action_of(method: &Method, route: &str) -> String {
    let segments: Vec<&str> = route
        .trim_start_matches("/api/v1/")
        .trim_start_matches('/')
        .split('/')
        .collect();
    let fixed: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.starts_with('{') && !s.is_empty())
        .collect();
    let ends_in_verb = fixed.len() > 1 && segments.last().is_some_and(|s| !s.starts_with('{'));
    let verb = match *method {
        Method::GET => "read",
        Method::POST => "create",
        Method::PUT => "put",
        Method::DELETE => "delete",
        _ => "call",
    };
    if ends_in_verb {
        fixed.join(".")
    } else {
        format!("{}.{verb}", fixed.join("."))
    }
}

/// The audit resource of a request: `<collection>:<id>` for a route naming one,
/// the path otherwise.
fn resource_of(route: &str, path: &str) -> String {
    let route: Vec<&str> = route.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    route
        .iter()
        .zip(&path)
        .position(|(r, _)| r.starts_with('{'))
        .filter(|at| *at > 0 && route.len() == path.len())
        .map_or_else(
            || path.join("/"),
            |at| format!("{}:{}", route[at - 1], path[at]),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_actions_and_resources() {
        for (method, route, action) in [
            (Method::POST, "/api/v1/tasks", "tasks.create"),
            (Method::POST, "/api/v1/tasks/{id}/cancel", "tasks.cancel"),
            (Method::DELETE, "/api/v1/keys/{id}", "keys.delete"),
            (Method::PUT, "/api/v1/roles/{name}", "roles.put"),
            (
                Method::POST,
                "/api/v1/tools/{name}/execute",
                "tools.execute",
            ),
            (Method::POST, "/api/v1/workflows/prune", "workflows.prune"),
            (Method::GET, "/api/v1/tasks/{id}", "tasks.read"),
            (Method::POST, "/mcp", "mcp.create"),
        ] {
            assert_eq!(action_of(&method, route), action, "{route}");
        }
        assert_eq!(
            resource_of(
                "/api/v1/tools/{name}/execute",
                "/api/v1/tools/files/execute"
            ),
            "tools:files"
        );
        assert_eq!(
            resource_of("/api/v1/tasks", "/api/v1/tasks"),
            "/api/v1/tasks"
        );
    }
}
