//! `/api/v1/roles` and `/api/v1/audit`: a tenant's roles (built-in and its own) and
//! its audit log.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::access::{AuditFilter, AuditPage, Verification};
use crate::domain::{Action, BuiltinRole, Permission, Principal, Resource, Role};
use crate::http::{ApiError, AppState, ErrorBody, Json, Path, Query, permit};

/// A role as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleInfo {
    /// Its name.
    pub name: String,
    /// Whether every tenant has it (it cannot be changed).
    pub builtin: bool,
    /// What it grants.
    pub permissions: Vec<Permission>,
}

impl From<Role> for RoleInfo {
    fn from(role: Role) -> Self {
        Self {
            name: role.name,
            builtin: false,
            permissions: role.permissions,
        }
    }
}

impl From<BuiltinRole> for RoleInfo {
    fn from(role: BuiltinRole) -> Self {
        Self {
            name: role.as_str().to_owned(),
            builtin: true,
            permissions: role.permissions(),
        }
    }
}

/// The tenant's roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleList {
    /// Built-in roles first, then the tenant's own by name.
    pub items: Vec<RoleInfo>,
}

/// `PUT /api/v1/roles/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRole {
    /// What it grants (1–100 permissions; only tools take name patterns).
    pub permissions: Vec<Permission>,
}

#[utoipa::path(operation_id = "list_roles", get, path = "/api/v1/roles", tag = "access",
    responses((status = 200, body = RoleList)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<RoleList>, ApiError> {
    permit(&who, Action::Read, Resource::Roles, None)?;
    let own = state.gate.access().roles.list(who.tenant).await?;
    let items = BuiltinRole::ALL
        .into_iter()
        .map(RoleInfo::from)
        .chain(own.into_iter().map(RoleInfo::from))
        .collect();
    Ok(Json(RoleList { items }))
}

#[utoipa::path(operation_id = "get_role", get, path = "/api/v1/roles/{name}", tag = "access",
    params(("name" = String, Path, description = "The role")),
    responses((status = 200, body = RoleInfo)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<RoleInfo>, ApiError> {
    permit(&who, Action::Read, Resource::Roles, None)?;
    if let Some(builtin) = BuiltinRole::named(&name) {
        return Ok(Json(builtin.into()));
    }
    let role = state.gate.access().roles.get(who.tenant, &name).await?;
    role.map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::not_found("role"))
}

#[utoipa::path(operation_id = "put_role", put, path = "/api/v1/roles/{name}", tag = "access", request_body = PutRole,
    params(("name" = String, Path, description = "The role: 1-64 of a-z, 0-9, _ and -; not a built-in role's")),
    responses((status = 201, body = RoleInfo, description = "Defined"), (status = 200, body = RoleInfo, description = "Redefined: keys holding it get the new permissions"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "Lacks the permission, or grants more than the caller holds")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<PutRole>,
) -> Result<(StatusCode, Json<RoleInfo>), ApiError> {
    permit(&who, Action::Create, Resource::Roles, None)?;
    permit(&who, Action::Update, Resource::Roles, None)?;
    if !who.grants.covers(&body.permissions) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a role cannot grant more than its author holds",
        ));
    }
    let roles = &state.gate.access().roles;
    let (role, created) = roles.put(who.tenant, &name, body.permissions).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(role.into())))
}

#[utoipa::path(operation_id = "delete_role", delete, path = "/api/v1/roles/{name}", tag = "access",
    params(("name" = String, Path, description = "The role")),
    responses((status = 204, description = "Deleted: keys holding it lose what it granted")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    permit(&who, Action::Delete, Resource::Roles, None)?;
    if BuiltinRole::named(&name).is_some() {
        return Err(ApiError::invalid(format!("{name} is a built-in role")));
    }
    if state.gate.access().roles.delete(who.tenant, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("role"))
    }
}

#[utoipa::path(operation_id = "list_audit", get, path = "/api/v1/audit", tag = "access", params(AuditFilter),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    permit(&who, Action::Read, Resource::Audit, None)?;
    let audit = &state.gate.access().audit;
    Ok(Json(audit.list(&who.tenant.to_string(), &filter).await?))
}

#[utoipa::path(operation_id = "verify_audit", get, path = "/api/v1/audit/verify", tag = "access",
    responses((status = 200, body = Verification, description = "Whether the tenant's chain is whole, and where it first broke")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Verification>, ApiError> {
    permit(&who, Action::Read, Resource::Audit, None)?;
    let audit = &state.gate.access().audit;
    Ok(Json(audit.verify(&who.tenant.to_string()).await?))
}
