//! `/api/v1/keys` and `/api/v1/tenants`: API keys (a tenant's admins) and tenants (the
//! operator's admins).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Action, Grants, Principal, Resource};
use crate::http::{ApiError, AppState, Created, ErrorBody, permit};
use crate::http::{Json, Path};
use crate::{ApiKey, Scope, Tenant, TenantId};

/// `POST /api/v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label, 1 to 100 characters.
    pub name: String,
    /// What it may do (default `read` when no roles are given either).
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// Roles it holds besides its scopes: built-in (`admin`, `operator`, `developer`,
    /// `viewer`, `agent`) or the tenant's own. At most 16.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The tenant it acts for: the caller's by default; another only for the
    /// operator's admins.
    #[serde(default)]
    pub tenant: Option<TenantId>,
}

/// An API key as listed: never the key, nor its hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// The key's id (what revoking takes).
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// Its label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Roles it holds besides its scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; absent while it is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyInfo {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            tenant: key.tenant_id,
            name: key.name,
            scopes: key.scopes,
            roles: key.roles,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A key just made: the key itself is shown here once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key: keep it now.
    pub key: String,
    /// Its record.
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// The tenant's keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Oldest first, revoked ones included.
    pub items: Vec<KeyInfo>,
}

/// `POST /api/v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Its name, 1 to 100 characters.
    pub name: String,
}

/// Every tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantList {
    /// Created ones with their names, and those first seen on a record.
    pub items: Vec<Tenant>,
}

#[utoipa::path(operation_id = "create_key", post, path = "/api/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "No such tenant")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Extension<Created>, Json<CreatedKey>), ApiError> {
    permit(&who, Action::Create, Resource::Keys, None)?;
    let engine = &state.services.engine;
    let tenant = match body.tenant {
        None => who.tenant,
        Some(tenant) if tenant == who.tenant => tenant,
        Some(tenant) => {
            operator(&state, &who)?;
            if !engine.tenants().await?.iter().any(|t| t.id == tenant) {
                return Err(ApiError::not_found("tenant"));
            }
            tenant
        }
    };
    // Nobody hands on more than they hold.
    let roles = &state.gate.access().roles;
    roles.check_exist(tenant, &body.roles).await?;
    let mut wanted = Grants::of_scopes(&body.scopes);
    wanted.extend(
        roles
            .grants(tenant, &body.roles)
            .await?
            .permissions()
            .iter()
            .cloned(),
    );
    if !who.grants.covers(wanted.permissions()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a key cannot be given more than its creator holds",
        ));
    }
    let (key, record) = engine
        .create_api_key_with_roles(tenant, body.name, body.scopes, body.roles, None)
        .await?;
    let created = Created(format!("keys:{}", record.id));
    let info = record.into();
    Ok((
        StatusCode::CREATED,
        Extension(created),
        Json(CreatedKey { key, info }),
    ))
}

#[utoipa::path(operation_id = "list_keys", get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<KeyList>, ApiError> {
    permit(&who, Action::Read, Resource::Keys, None)?;
    let keys = state.services.engine.api_keys(who.tenant).await?;
    Ok(Json(KeyList {
        items: keys.into_iter().map(KeyInfo::from).collect(),
    }))
}

#[utoipa::path(operation_id = "revoke_key", delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, format = Uuid, description = "The key's id")),
    responses((status = 200, body = KeyInfo, description = "Revoked: refused from now on by every instance, its sessions closed")),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Json<KeyInfo>, ApiError> {
    permit(&who, Action::Delete, Resource::Keys, None)?;
    let revoked = state.services.engine.revoke_api_key(who.tenant, id).await?;
    Ok(Json(revoked.into()))
}

#[utoipa::path(operation_id = "create_tenant", post, path = "/api/v1/tenants", tag = "keys", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    operator(&state, &who)?;
    let tenant = state.services.engine.create_tenant(body.name).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[utoipa::path(operation_id = "list_tenants", get, path = "/api/v1/tenants", tag = "keys",
    responses((status = 200, body = TenantList)),
    security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn tenants(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<TenantList>, ApiError> {
    operator(&state, &who)?;
    let items = state.services.engine.tenants().await?;
    Ok(Json(TenantList { items }))
}

/// Only the operator's admins manage tenants.
fn operator(state: &AppState, who: &Principal) -> Result<(), ApiError> {
    if state.gate.is_operator(who) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the operator's admins manage tenants",
        ))
    }
}
