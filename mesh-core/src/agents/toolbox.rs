//! The tools one agent offers its model for one task: its own adapters and the
//! tenant's tools it is allowed, each action a function the model can call.

use std::collections::HashMap;
use std::sync::Arc;

use mesh_embed::ToolSpec;
use serde_json::Value;

use crate::domain::TenantId;
use crate::tools::{CALL, Caller, ToolAction, ToolAdapter, ToolError, Tools};

/// The most characters of a tool name Bedrock takes.
const MAX_NAME: usize = 64;

/// What a model's tool name runs.
#[derive(Clone)]
enum Binding {
    /// One of the agent's own adapters.
    Own(Arc<dyn ToolAdapter>),
    /// A tool of the tenant's catalog, by its name there.
    Shared(String),
}

/// The functions of one task, by the names the model sees.
pub(super) struct Toolbox {
    specs: Vec<ToolSpec>,
    bindings: HashMap<String, (Binding, String)>,
}

impl Toolbox {
    /// `own` adapters, then the tools named `shared` as `tenant` sees them now (a
    /// name missing from its catalog — a source that is down — is left out). Shared
    /// tools without the tools service are refused.
    pub(super) async fn assemble(
        own: &[Arc<dyn ToolAdapter>],
        shared: &[String],
        tools: Option<&Tools>,
        tenant: TenantId,
    ) -> Result<Self, ToolError> {
        let mut toolbox = Self {
            specs: Vec::new(),
            bindings: HashMap::new(),
        };
        for adapter in own {
            for action in adapter.actions() {
                toolbox.add(adapter.name(), Binding::Own(adapter.clone()), action);
            }
        }
        if !shared.is_empty() {
            let tools = tools.ok_or_else(no_service)?;
            let catalog = tools.list(tenant).await?;
            for name in shared {
                match catalog.iter().find(|info| &info.name == name) {
                    Some(info) => {
                        for action in info.actions.clone() {
                            toolbox.add(name, Binding::Shared(name.clone()), action);
                        }
                    }
                    None => {
                        tracing::warn!(tool = %name, "an agent's tool is not in its tenant's catalog now")
                    }
                }
            }
        }
        Ok(toolbox)
    }

    fn add(&mut self, tool: &str, binding: Binding, action: ToolAction) {
        let wanted = if action.name == CALL {
            tool.to_owned()
        } else {
            format!("{tool}_{}", action.name)
        };
        let mut name = function_name(&wanted);
        let mut n = 2;
        while self.bindings.contains_key(&name) {
            let suffix = format!("_{n}");
            name = format!(
                "{}{suffix}",
                function_name(&wanted)
                    .chars()
                    .take(MAX_NAME - suffix.len())
                    .collect::<String>()
            );
            n += 1;
        }
        self.specs.push(ToolSpec::new(
            name.clone(),
            action.description.clone(),
            action.input_schema.clone(),
        ));
        self.bindings.insert(name, (binding, action.name));
    }

    /// What the model may call.
    pub(super) fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// Runs the function the model calls `name`, as `tenant` (the tenant's tools under
    /// its rate limits).
    pub(super) async fn call(
        &self,
        tools: Option<&Tools>,
        tenant: TenantId,
        name: &str,
        input: Value,
    ) -> Result<Value, ToolError> {
        let (binding, action) = self
            .bindings
            .get(name)
            .ok_or_else(|| ToolError::UnknownTool(name.to_owned()))?;
        match binding {
            Binding::Own(adapter) => {
                crate::tools::instrumented(adapter.name(), action, adapter.execute(action, input))
                    .await
            }
            Binding::Shared(tool) => {
                let caller = Caller { tenant, key: None };
                let tools = tools.ok_or_else(no_service)?;
                tools.execute(caller, tool, action, input).await
            }
        }
    }
}

fn no_service() -> ToolError {
    ToolError::Unavailable(
        "an agent outside Mesh's process has only its own tools, not the tenant's".into(),
    )
}

/// `name` as a function name models accept: `[A-Za-z0-9_-]`, at most 64 characters.
fn function_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::FilesAdapter;

    #[tokio::test]
    async fn each_action_is_a_function_with_a_valid_unique_name() {
        let engine = crate::Engine::in_memory().await;
        let tools = Tools::start(&engine, Default::default(), Default::default());
        let own: Vec<Arc<dyn ToolAdapter>> = vec![
            Arc::new(FilesAdapter::read_only("code.base", "/tmp")),
            Arc::new(FilesAdapter::read_only("code_base", "/tmp")),
        ];
        let toolbox = Toolbox::assemble(&own, &["absent".into()], Some(&tools), TenantId::new())
            .await
            .unwrap();
        let names: Vec<&str> = toolbox.specs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "code_base_list",
                "code_base_read",
                "code_base_list_2",
                "code_base_read_2"
            ]
        );
        assert_eq!(function_name(&"x".repeat(80)).len(), 64);
    }
}
