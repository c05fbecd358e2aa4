//! The tools service's configuration for the binaries: flags for the secret key and
//! Redis, and the operator's tools file (TOML) — rate limits and the MCP servers
//! every tenant (or one) gets:
//!
//! ```toml
//! [limits]                       # calls per second with burst; omit one for no limit
//! per_tenant = { per_second = 200, burst = 400 }
//! per_key = { per_second = 100, burst = 200 }
//! per_tool = { per_second = 100, burst = 200 }
//! cache_ttl_secs = 60            # results of idempotent tools
//!
//! [[sources]]                    # started by Mesh over stdio, restarted if it dies
//! name = "fs"
//! command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]
//!
//! [[sources]]                    # Streamable HTTP, for one tenant
//! name = "search"
//! url = "https://mcp.example.com/mcp"
//! headers = { authorization = "Bearer ..." }
//! tenant = "0190a6f0-0000-7000-8000-000000000001"
//! prefix = "always"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_core::Engine;
use mesh_core::tools::{
    OperatorSource, Rate, SecretKey, ToolLimits, ToolRegistry, Tools, ToolsConfig,
};
use serde::Deserialize;

type Error = Box<dyn std::error::Error>;

/// Flags for the tools service, shared by every binary.
#[derive(Clone, Default, clap::Args)]
pub struct ToolFlags {
    /// The tools file (TOML): rate limits and the operator's MCP servers.
    #[arg(long, env = "MESH_TOOLS_CONFIG")]
    pub tools_config: Option<PathBuf>,
    /// 32 bytes, base64 (`openssl rand -base64 32`): seals tenants' tool credentials
    /// at rest. Without one, sources with credentials are refused (`mesh up` keeps
    /// one in its data directory).
    #[arg(long, env = "MESH_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Redis (`redis://host:port`): tool rate limits and cached results shared by
    /// every instance; per instance without it.
    #[arg(long, env = "MESH_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
}

impl std::fmt::Debug for ToolFlags {
    /// Never shows the key or Redis's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolFlags")
            .field("tools_config", &self.tools_config)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The tools file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default)]
    limits: Option<LimitsFile>,
    #[serde(default)]
    sources: Vec<OperatorSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    per_tenant: Option<Rate>,
    per_key: Option<Rate>,
    per_tool: Option<Rate>,
    cache_ttl_secs: Option<u64>,
}

impl ToolFlags {
    /// The tools service on `engine`'s stores with the operator's `registry`; `key`
    /// seals credentials when no `--secret-key` is given.
    pub async fn start(
        &self,
        engine: &Engine,
        registry: ToolRegistry,
        key: Option<String>,
    ) -> Result<Tools, Error> {
        let mut config = ToolsConfig::default();
        if let Some(path) = &self.tools_config {
            let file = read(path)?;
            if let Some(limits) = file.limits {
                let ttl = limits
                    .cache_ttl_secs
                    .map_or(ToolLimits::default().cache_ttl, Duration::from_secs);
                config = config.limits(
                    ToolLimits::default()
                        .rates(limits.per_tenant, limits.per_key, limits.per_tool)
                        .cache_ttl(ttl),
                );
            }
            for source in file.sources {
                config = config.source(source);
            }
        }
        if let Some(key) = self.secret_key.clone().or(key) {
            config = config.secret_key(SecretKey::from_base64(&key)?);
        }
        Ok(match &self.redis_url {
            Some(url) => Tools::start_shared(engine, registry, config, url)
                .await
                .map_err(|e| format!("cannot reach Redis for the tools' limits: {e}"))?,
            None => Tools::start(engine, registry, config),
        })
    }
}

fn read(path: &Path) -> Result<ToolsFile, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the tools file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("the tools file {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_parses() {
        let doc = include_str!("tools_file.rs");
        let toml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start().to_owned() + "\n")
            .collect();
        let file: ToolsFile = toml::from_str(&toml).unwrap();
        assert_eq!(file.sources.len(), 2);
        assert_eq!(file.sources[0].command[0], "npx");
        assert!(file.sources[1].tenant.is_some());
        assert_eq!(file.limits.unwrap().per_key, Some(Rate::new(100.0, 200)));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<ToolsFile>("[[sources]]\nname = \"x\"\ncomand = []").is_err());
    }
}
