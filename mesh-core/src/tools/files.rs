//! The `files` tool: list, read and write files under one root directory — what a
//! workflow's steps use to look at a checkout or leave a report. Paths are relative to
//! the root; absolute paths, `..` and symbolic links that lead out of it are refused.

use std::path::{Component, Path, PathBuf};

use mesh_embed::BoxFuture;
use serde_json::{Value, json};

use super::{ToolAction, ToolAdapter, ToolError};

/// The largest file `read` returns and `write` takes (bytes).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// The most entries `list` returns.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// Files under one root directory as a tool.
#[derive(Debug, Clone)]
pub struct FilesAdapter {
    name: String,
    root: PathBuf,
    writable: bool,
}

impl FilesAdapter {
    /// The tool `files` over `root` (created if missing when something is written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            name: "files".into(),
            root: root.into(),
            writable: true,
        }
    }

    /// The tool `name` over `root`, which only lists and reads: what an agent that
    /// analyses a checkout is given.
    pub fn read_only(name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            root: root.into(),
            writable: false,
        }
    }

    /// The same tool, called `name`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// `relative` under the root, if it stays there.
    fn resolve(&self, relative: &str) -> Result<PathBuf, ToolError> {
        let path = Path::new(relative);
        let plain = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(ToolError::InvalidInput(format!(
                "{relative:?}: paths are relative to the root, without `..`"
            )));
        }
        let full = self.root.join(path);
        // A symbolic link inside the root may point out of it.
        if let (Ok(real), Ok(root)) = (full.canonicalize(), self.root.canonicalize())
            && !real.starts_with(&root)
        {
            return Err(ToolError::InvalidInput(format!(
                "{relative:?} leads out of the root"
            )));
        }
        Ok(full)
    }

    async fn run(&self, action: &str, input: Value) -> Result<Value, ToolError> {
        let path = input["path"].as_str().unwrap_or(".");
        let full = self.resolve(path)?;
        let io = |e: std::io::Error| ToolError::InvalidInput(format!("{path:?}: {e}"));
        match action {
            "list" => {
                let mut entries = Vec::new();
                let mut dir = tokio::fs::read_dir(&full).await.map_err(io)?;
                while let Some(entry) = dir.next_entry().await.map_err(io)? {
                    if entries.len() == MAX_LIST_ENTRIES {
                        break;
                    }
                    let kind = entry.file_type().await.map_err(io)?;
                    entries.push(json!({
                        "name": entry.file_name().to_string_lossy(),
                        "dir": kind.is_dir(),
                    }));
                }
                entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok(json!({"path": path, "entries": entries}))
            }
            "read" => {
                let meta = tokio::fs::metadata(&full).await.map_err(io)?;
                if meta.len() > MAX_FILE_BYTES as u64 {
                    return Err(ToolError::InvalidInput(format!(
                        "{path:?} is larger than {MAX_FILE_BYTES} bytes"
                    )));
                }
                let bytes = tokio::fs::read(&full).await.map_err(io)?;
                Ok(json!({"path": path, "text": String::from_utf8_lossy(&bytes)}))
            }
            "write" if self.writable => {
                let text = input["text"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| input["text"].to_string());
                if text.len() > MAX_FILE_BYTES {
                    return Err(ToolError::InvalidInput(format!(
                        "at most {MAX_FILE_BYTES} bytes"
                    )));
                }
                if let Some(parent) = full.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                tokio::fs::write(&full, &text).await.map_err(io)?;
                Ok(json!({"path": path, "bytes": text.len()}))
            }
            other => Err(ToolError::UnknownAction(other.to_owned())),
        }
    }
}

impl ToolAdapter for FilesAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        if self.writable {
            "Files under one directory: list, read, write"
        } else {
            "Files under one directory: list, read"
        }
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["files".into()]
    }

    fn actions(&self) -> Vec<ToolAction> {
        let path = json!({"type": "string", "description": "Relative to the tool's root"});
        let mut actions = vec![
            ToolAction::new(
                "list",
                "A directory's entries",
                json!({"type": "object", "properties": {"path": path}}),
            ),
            ToolAction::new(
                "read",
                "A file's text (at most 1 MiB)",
                json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
            ),
        ];
        if self.writable {
            actions.push(ToolAction::new(
                "write",
                "Writes text to a file (at most 1 MiB), making its directories",
                json!({"type": "object", "properties": {"path": path, "text": {"description": "What to write: a string as it is, anything else as JSON"}}, "required": ["path", "text"]}),
            ));
        }
        actions
    }

    fn execute<'a>(
        &'a self,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(self.run(action, input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_stay_under_the_root() {
        let root =
            std::env::temp_dir().join(format!("mesh-files-{}", uuid::Uuid::now_v7().simple()));
        let files = FilesAdapter::new(&root);
        let wrote = files
            .run(
                "write",
                json!({"path": "out/report.md", "text": "# Report"}),
            )
            .await
            .unwrap();
        assert_eq!(wrote["bytes"], 8);
        let read = files
            .run("read", json!({"path": "out/report.md"}))
            .await
            .unwrap();
        assert_eq!(read["text"], "# Report");
        let listed = files.run("list", json!({"path": "."})).await.unwrap();
        assert_eq!(listed["entries"], json!([{"name": "out", "dir": true}]));
        for bad in ["../x", "/etc/passwd", "out/../../x"] {
            let e = files.run("read", json!({"path": bad})).await.unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
            let e = files
                .run("list", json!({"path": "escape"}))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("out of the root"), "{e}");
        }
        let e = files
            .run("read", json!({"path": "missing"}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_request");
        let reader = FilesAdapter::read_only("code", &root);
        assert_eq!(reader.name(), "code");
        assert_eq!(
            reader
                .actions()
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["list", "read"]
        );
        let refused = reader
            .run("write", json!({"path": "x", "text": "y"}))
            .await
            .unwrap_err();
        assert_eq!(refused, ToolError::UnknownAction("write".into()));
        assert!(!root.join("x").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
