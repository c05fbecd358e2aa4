//! `mesh roles` and `mesh audit`: a tenant's roles and its audit log.

use reqwest::Method;

use super::output::Column;
use super::{CliError, Context, segment};

/// `mesh roles …`
#[derive(Debug, clap::Subcommand)]
pub enum Roles {
    /// Lists the roles: built-in ones, then your tenant's own.
    List,
    /// Shows one role's permissions.
    Show {
        /// The role.
        name: String,
    },
    /// Defines or redefines a role of your tenant.
    Put {
        /// The role: 1-64 of a-z, 0-9, _ and -.
        name: String,
        /// A permission, `resource:action[,action…][:pattern]` — e.g.
        /// `tools:read,execute:git*`, `agents:connect` (repeat).
        #[arg(long = "allow", required = true)]
        allow: Vec<String>,
    },
    /// Deletes a role of your tenant: keys holding it lose what it granted.
    Delete {
        /// The role.
        name: String,
    },
}

/// `mesh audit …`
#[derive(Debug, clap::Subcommand)]
pub enum Audit {
    /// Lists audit records, newest first.
    List {
        /// Only this actor's (`key:<id>`, `jwt:<tenant>:<sub>`, `anonymous`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (`tasks.create`, `mcp.submit_task`, …).
        #[arg(long)]
        action: Option<String>,
        /// Only this resource (`tasks:<id>`, `tools:<name>`, …).
        #[arg(long)]
        resource: Option<String>,
        /// Only `allowed` or `refused`.
        #[arg(long)]
        decision: Option<String>,
        /// Written at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// How many (1-1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Checks the chain: every record's hash and link, nothing missing.
    Verify,
}

const ROLE_COLUMNS: &[Column] = &[
    ("NAME", "/name"),
    ("BUILTIN", "/builtin"),
    ("ALLOWS", "/allows"),
];

/// A role with its permissions also written as `--allow` takes them
/// (`tools:read,execute:git*`), for tables.
fn with_allows(mut role: serde_json::Value) -> serde_json::Value {
    let allows: Vec<String> = role["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let actions: Vec<&str> = p["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .collect();
            let resource = p["resource"].as_str().unwrap_or_default();
            match p["names"].as_str() {
                Some("*") | None => format!("{resource}:{}", actions.join(",")),
                Some(names) => format!("{resource}:{}:{names}", actions.join(",")),
            }
        })
        .collect();
    role["allows"] = allows.join(" ").into();
    role
}

/// A permission from `resource:action[,action…][:pattern]`.
fn permission(text: &str) -> Result<serde_json::Value, CliError> {
    let mut parts = text.splitn(3, ':');
    let (Some(resource), Some(actions)) = (parts.next(), parts.next()) else {
        return Err(CliError::Usage(format!(
            "--allow {text}: expected resource:action[,action…][:pattern]"
        )));
    };
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    let names = parts.next().unwrap_or("*");
    Ok(serde_json::json!({"resource": resource, "actions": actions, "names": names}))
}

impl Roles {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::List => {
                let roles = ctx.client.get("/api/v1/roles").await?;
                let items: Vec<_> = roles["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned()
                    .map(with_allows)
                    .collect();
                ctx.out.list(&roles, &items.into(), ROLE_COLUMNS);
            }
            Self::Show { name } => {
                let role = ctx
                    .client
                    .get(&format!("/api/v1/roles/{}", segment(&name)))
                    .await?;
                ctx.out.record(&with_allows(role), ROLE_COLUMNS);
            }
            Self::Put { name, allow } => {
                let permissions = allow
                    .iter()
                    .map(|a| permission(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let body = serde_json::json!({ "permissions": permissions });
                let path = format!("/api/v1/roles/{}", segment(&name));
                let role = ctx.client.call(Method::PUT, &path, Some(&body)).await?;
                ctx.out.done(&role, &format!("role {name} defined"));
            }
            Self::Delete { name } => {
                let path = format!("/api/v1/roles/{}", segment(&name));
                let gone = ctx.client.delete(&path).await?;
                ctx.out.done(&gone, &format!("role {name} deleted"));
            }
        }
        Ok(())
    }
}

impl Audit {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), CliError> {
        match self {
            Self::List {
                actor,
                action,
                resource,
                decision,
                since,
                limit,
            } => {
                let mut query = vec![format!("limit={limit}")];
                for (key, value) in [
                    ("actor", actor),
                    ("action", action),
                    ("resource", resource),
                    ("decision", decision),
                    ("since", since),
                ] {
                    if let Some(value) = value {
                        query.push(format!("{key}={}", segment(&value)));
                    }
                }
                let page = ctx
                    .client
                    .get(&format!("/api/v1/audit?{}", query.join("&")))
                    .await?;
                const COLUMNS: &[Column] = &[
                    ("SEQ", "/seq"),
                    ("AT", "/at"),
                    ("ACTOR", "/actor"),
                    ("ACTION", "/action"),
                    ("RESOURCE", "/resource"),
                    ("DECISION", "/decision"),
                ];
                ctx.out.list(&page, &page["records"], COLUMNS);
            }
            Self::Verify => {
                let verified = ctx.client.get("/api/v1/audit/verify").await?;
                match ctx.out.format {
                    super::Format::Json => ctx.out.value(&verified),
                    super::Format::Table => {
                        ctx.out.record(
                            &verified,
                            &[
                                ("ok", "/ok"),
                                ("records", "/records"),
                                ("head seq", "/head_seq"),
                                ("head hash", "/head_hash"),
                                ("first break", "/first_break"),
                            ],
                        );
                    }
                }
                if verified["ok"] != true {
                    return Err(CliError::Unsuccessful("the audit chain is broken".into()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_from_the_command_line() {
        assert_eq!(
            permission("tools:read,execute:git*").unwrap(),
            serde_json::json!({"resource": "tools", "actions": ["read", "execute"], "names": "git*"})
        );
        assert_eq!(permission("agents:connect").unwrap()["names"], "*");
        assert!(permission("tools").is_err());
        // Tables write permissions back the way --allow takes them.
        let role = serde_json::json!({"permissions": [
            permission("tools:read,execute:git*").unwrap(),
            permission("agents:connect").unwrap(),
        ]});
        assert_eq!(
            with_allows(role)["allows"],
            "tools:read,execute:git* agents:connect"
        );
    }
}
