//! `mesh keys` and `mesh tenants`: credentials and tenants.

use super::output::Column;
use super::{CliError, Context, segment};

/// `mesh keys …` (admin)
#[derive(Debug, clap::Subcommand)]
pub enum Keys {
    /// Creates an API key; the key is printed this once.
    Create {
        /// A label for it.
        name: String,
        /// What it may do: read, write, admin, agent (repeat; default read).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A role it holds: admin, operator, developer, viewer, agent, or your
        /// tenant's own (repeat).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The tenant it acts for (the operator's admins only; default yours).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Lists your tenant's keys (never the keys themselves).
    List,
    /// Revokes a key: refused at once by every instance, its sessions closed.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
    },
}

/// `mesh tenants …` (the operator's admins)
#[derive(Debug, clap::Subcommand)]
pub enum Tenants {
    /// Creates a tenant.
    Create {
        /// Its name.
        name: String,
    },
    /// Lists the tenants.
    List,
}

const KEY_COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("SCOPES", "/scopes"),
    ("ROLES", "/roles"),
    ("CREATED", "/created_at"),
    ("REVOKED", "/revoked_at"),
];

impl Keys {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::Create {
                name,
                scopes,
                roles,
                tenant,
            } => {
                let mut body = serde_json::json!({"name": name, "scopes": scopes, "roles": roles});
                if let Some(tenant) = tenant {
                    body["tenant"] = tenant.into();
                }
                let made = ctx.client.post("/api/v1/keys", &body).await?;
                match ctx.out.format {
                    super::Format::Json => ctx.out.value(&made),
                    super::Format::Table => {
                        ctx.out.record(
                            &made,
                            &[
                                ("id", "/id"),
                                ("name", "/name"),
                                ("tenant", "/tenant"),
                                ("scopes", "/scopes"),
                                ("roles", "/roles"),
                            ],
                        );
                        println!("\nkey: {}", super::output::cell(made.pointer("/key")));
                        println!("(shown this once: keep it now)");
                    }
                }
            }
            Self::List => {
                let keys = ctx.client.get("/api/v1/keys").await?;
                ctx.out.list(&keys, &keys["items"], KEY_COLUMNS);
            }
            Self::Revoke { id } => {
                let key = ctx
                    .client
                    .delete(&format!("/api/v1/keys/{}", segment(&id)))
                    .await?;
                ctx.out.done(&key, &format!("revoked key {id}"));
            }
        }
        Ok(())
    }
}

impl Tenants {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::Create { name } => {
                let body = serde_json::json!({ "name": name });
                let tenant = ctx.client.post("/api/v1/tenants", &body).await?;
                ctx.out.done(
                    &tenant,
                    &format!(
                        "created tenant {name}: {}",
                        super::output::cell(tenant.pointer("/id"))
                    ),
                );
            }
            Self::List => {
                let tenants = ctx.client.get("/api/v1/tenants").await?;
                const COLUMNS: &[Column] =
                    &[("ID", "/id"), ("NAME", "/name"), ("CREATED", "/created_at")];
                ctx.out.list(&tenants, &tenants["items"], COLUMNS);
            }
        }
        Ok(())
    }
}
