//! Named connection profiles, kept in `mesh/config.toml` under the platform's config
//! directory (`$XDG_CONFIG_HOME` or `~/.config` on Linux; `MESH_CONFIG` names another
//! file). The file holds API keys, so it is written readable by its owner only.
//!
//! ```toml
//! default = "local"
//!
//! [profiles.local]
//! url = "http://127.0.0.1:7070"
//! key = "mesh_…"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::CliError;

/// The server and credential a profile names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The server's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The profiles file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    /// The profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Where the file is: `MESH_CONFIG`, else `mesh/config.toml` in the platform's
    /// config directory.
    pub fn path() -> Option<PathBuf> {
        match std::env::var_os("MESH_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => dirs::config_dir().map(|dir| dir.join("mesh").join("config.toml")),
        }
    }

    /// The file's profiles; none if there is no file.
    pub fn load() -> Result<Self, CliError> {
        let Some(path) = Self::path() else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| CliError::Local(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Local(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file (readable by its owner only: it holds keys).
    pub fn save(&self) -> Result<PathBuf, CliError> {
        let path = Self::path()
            .ok_or_else(|| CliError::Local("no config directory; set MESH_CONFIG".into()))?;
        let local = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        let text = toml::to_string_pretty(self).map_err(|e| CliError::Local(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(local)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(local)?;
        Ok(path)
    }

    /// The profile `name`, or the default one when no name is given (none if there
    /// is no default). A name that is not there is an error.
    pub fn pick(&self, name: Option<&str>) -> Result<Profile, CliError> {
        match name.or(self.default.as_deref()) {
            None => Ok(Profile::default()),
            Some(name) => self.profiles.get(name).cloned().ok_or_else(|| {
                CliError::Usage(format!(
                    "no profile {name:?} (see `mesh profile list`, `mesh profile save`)"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_read_back_what_was_written_and_name_the_missing_one() {
        let mut profiles = Profiles::default();
        profiles.profiles.insert(
            "prod".into(),
            Profile {
                url: Some("https://mesh.example".into()),
                key: Some("mesh_k".into()),
            },
        );
        profiles.default = Some("prod".into());
        let text = toml::to_string_pretty(&profiles).unwrap_or_default();
        let back: Profiles = toml::from_str(&text).unwrap_or_default();
        assert_eq!(back, profiles);
        assert_eq!(back.pick(None).ok(), back.profiles.get("prod").cloned());
        assert!(matches!(back.pick(Some("dev")), Err(CliError::Usage(m)) if m.contains("dev")));
    }
}

/// `mesh profile …`
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Saves the URL and key given now (`--url`, `--key` or their environment
    /// variables) as a named profile.
    Save {
        /// The profile's name.
        name: String,
        /// Also make it the default.
        #[arg(long)]
        default: bool,
    },
    /// Lists the profiles (keys masked).
    List,
}

impl ProfileCommand {
    /// Runs the command with the connection settings given on the command line.
    pub fn run(self, connection: &super::Connection) -> Result<(), CliError> {
        let out = super::Printer {
            format: connection.output,
        };
        let mut profiles = Profiles::load()?;
        match self {
            Self::Save { name, default } => {
                let profile = Profile {
                    url: connection.url.clone(),
                    key: connection.key.clone(),
                };
                if profile == Profile::default() {
                    return Err(CliError::Usage(
                        "nothing to save: give --url and/or --key".into(),
                    ));
                }
                profiles.profiles.insert(name.clone(), profile);
                if default || profiles.default.is_none() {
                    profiles.default = Some(name.clone());
                }
                let path = profiles.save()?;
                let answer = serde_json::json!({"saved": name, "path": path});
                out.done(
                    &answer,
                    &format!("saved profile {name} in {}", path.display()),
                );
            }
            Self::List => {
                let rows: Vec<serde_json::Value> = profiles
                    .profiles
                    .iter()
                    .map(|(name, p)| {
                        serde_json::json!({
                            "name": name,
                            "url": p.url,
                            "key": p.key.as_deref().map(mask),
                            "default": profiles.default.as_deref() == Some(name.as_str()),
                        })
                    })
                    .collect();
                let rows = serde_json::Value::Array(rows);
                out.list(
                    &rows,
                    &rows,
                    &[
                        ("NAME", "/name"),
                        ("URL", "/url"),
                        ("KEY", "/key"),
                        ("DEFAULT", "/default"),
                    ],
                );
            }
        }
        Ok(())
    }
}

/// A key shown by its first characters only.
fn mask(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    format!("{shown}…")
}
