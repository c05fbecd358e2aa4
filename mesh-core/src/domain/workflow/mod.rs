//! Workflows as data: definitions (JSON documents or Rust values), their validation,
//! the pure interpreter that walks them, and the records the runtime keeps.

mod condition;
mod definition;
mod json;
mod machine;
mod run;
mod schema;
mod state;
mod validate;

pub use condition::{Compare, Condition};
pub use definition::{
    Action, DocStep, END, Edge, Graph, MapStep, Next, Reducer, StateKey, Step, TaskStep, Wait,
    WorkflowDefinition,
};
pub use machine::{Activation, At, Frame, MachineError, Position, Running};
pub use run::{
    Checkpoint, DefinitionRecord, ForkPoint, JournalEvent, MessageKind, ParentStep,
    PendingInterrupt, RunMessage, RunStatus, WorkflowRun, checkpoint_id, child_run_id, derived_id,
    interrupt_id, task_key,
};
pub use schema::Schema;
pub use state::{apply, render};
pub use validate::{
    DefinitionError, MAX_NESTING, MAX_STEPS_PER_DEFINITION, MAX_TIMER_MS, valid_name,
};
