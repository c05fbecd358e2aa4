//! The `mesh` command line's client commands: each a client of the REST API, with
//! tables for people, `--output json` for scripts, live progress on a terminal, and an
//! exit code per cause of failure (see [`error::exit`]). `docs/cli.md` shows every
//! command with its output.

mod access;
mod agents;
mod client;
pub mod error;
mod keys;
pub mod output;
pub mod profile;
mod tasks;
mod tools;
mod workflows;

use serde_json::Value;

pub use access::{Audit, Roles};
pub use agents::Agents;
pub use client::Client;
pub use error::CliError;
pub use keys::{Keys, Tenants};
pub use output::{Format, Printer};
pub use profile::{Profile, ProfileCommand, Profiles};
pub use tasks::Tasks;
pub use tools::{Docs, Tools};
pub use workflows::Workflows;

/// Where the server is, who is calling, and how to show results: flags, else the
/// environment, else the profile.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The server's base URL [default: the profile's, else http://127.0.0.1:7070].
    #[arg(long, env = "MESH_URL", global = true)]
    pub url: Option<String>,
    /// The API key (or JWT) to call with [default: the profile's].
    #[arg(long, env = "MESH_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// A named profile from the config file (see `mesh profile`).
    #[arg(long, env = "MESH_PROFILE", global = true)]
    pub profile: Option<String>,
    /// How to print results.
    #[arg(long, short = 'o', value_enum, default_value_t, global = true)]
    pub output: Format,
}

/// The URL used when neither a flag, the environment nor a profile gives one: where
/// `mesh up` listens by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

impl Connection {
    /// The server URL and key these settings resolve to.
    pub fn resolve(&self) -> Result<(String, Option<String>), CliError> {
        let profile = Profiles::load()?.pick(self.profile.as_deref())?;
        let url = self
            .url
            .clone()
            .or(profile.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        Ok((url, self.key.clone().or(profile.key)))
    }

    /// A client and a printer for these settings.
    pub fn context(&self) -> Result<Context, CliError> {
        let (url, key) = self.resolve()?;
        Ok(Context {
            client: Client::new(&url, key),
            out: Printer {
                format: self.output,
            },
        })
    }
}

/// What a command runs with.
#[derive(Debug, Clone)]
pub struct Context {
    /// The REST client.
    pub client: Client,
    /// The output.
    pub out: Printer,
}

/// A JSON value from the command line: inline, `@path` for a file's contents, or `-`
/// for standard input.
pub fn json_arg(arg: &str) -> Result<Value, CliError> {
    let text = match arg {
        "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?,
        path if path.starts_with('@') => std::fs::read_to_string(&path[1..])
            .map_err(|e| CliError::Usage(format!("{}: {e}", &path[1..])))?,
        inline => inline.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("not JSON ({e}): {arg}")))
}

/// `s` as one URL path segment.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `path` with the query parameters that are set.
pub fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in params {
        if let Some(value) = value {
            query.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_paths_queries_and_json() {
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(
            with_query("/x", &[("a", Some("1 2".into())), ("b", None)]),
            "/x?a=1+2"
        );
        assert_eq!(with_query("/x", &[("b", None)]), "/x");
        assert_eq!(
            json_arg(r#"{"a":1}"#).ok(),
            Some(serde_json::json!({"a": 1}))
        );
        assert!(matches!(json_arg("{nope"), Err(CliError::Usage(_))));
    }
}
