//! The typed message catalogue: one serde type per message type.
//!
//! Unknown JSON fields are ignored (forward compatibility); optional fields are left
//! out when empty.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::codec::Encoder;
use uuid::Uuid;

use crate::doc::{DocClose, DocOpen, DocSync, DocUpdate};
use crate::{Error, Frame, FrameCodec, JsonRpcMessage, MessageType};

/// `hello` (agent → mesh): register, or resume with `agent_id`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hello {
    /// Display name.
    pub name: String,
    /// What the agent can do; task kinds it accepts are among these.
    pub capabilities: Vec<String>,
    /// How many tasks it runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Cost of an hour of its work, in dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<f64>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The id of an earlier registration to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

impl Hello {
    /// A `hello` with a name and capabilities; set the other fields directly.
    pub fn new(
        name: impl Into<String>,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            capabilities: capabilities.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// `welcome` (mesh → agent): registration accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Welcome {
    /// The agent's id; send it in a later `hello` to resume.
    pub agent_id: Uuid,
    /// This connection's id.
    pub session_id: Uuid,
    /// How often the mesh expects a heartbeat.
    pub heartbeat_ms: u64,
}

impl Welcome {
    /// A `welcome`.
    pub fn new(agent_id: Uuid, session_id: Uuid, heartbeat_ms: u64) -> Self {
        Self {
            agent_id,
            session_id,
            heartbeat_ms,
        }
    }
}

/// `heartbeat` (both): liveness and load.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Tasks the agent is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_tasks: Option<u32>,
    /// Load, 0 idle to 1 saturated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
}

impl Heartbeat {
    /// A heartbeat reporting `active_tasks` and `load`.
    pub fn new(active_tasks: Option<u32>, load: Option<f64>) -> Self {
        Self { active_tasks, load }
    }
}

/// `error` (both): something the peer sent was wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorMessage {
    /// Stable code, e.g. `"unknown_type"` (see [`Error::code`]).
    pub code: String,
    /// Human-readable detail.
    pub message: String,
    /// What the error refers to (a task id, a request id…).
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl ErrorMessage {
    /// An `error` with a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            reference: None,
        }
    }
}

impl From<&Error> for ErrorMessage {
    fn from(error: &Error) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

/// `goodbye` (both): the sender is draining; no new tasks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Goodbye {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Goodbye {
    /// A `goodbye` with an optional reason.
    pub fn new(reason: Option<String>) -> Self {
        Self { reason }
    }
}

/// `task_assign` (mesh → agent): run this task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskAssign {
    /// The task.
    pub task_id: Uuid,
    /// Its kind.
    pub kind: String,
    /// Its input.
    pub input: Value,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// Milliseconds the agent has to finish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The W3C trace context the task runs in (`00-<trace id>-<span id>-<flags>`):
    /// an agent that traces makes it the parent of its span for the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl TaskAssign {
    /// A `task_assign`.
    pub fn new(task_id: Uuid, kind: impl Into<String>, input: Value, attempt: u32) -> Self {
        Self {
            task_id,
            kind: kind.into(),
            input,
            attempt,
            deadline_ms: None,
            traceparent: None,
        }
    }
}

/// `task_accept` (agent → mesh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskAccept {
    /// The task taken.
    pub task_id: Uuid,
}

impl TaskAccept {
    /// A `task_accept`.
    pub fn new(task_id: Uuid) -> Self {
        Self { task_id }
    }
}

/// `task_reject` (agent → mesh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReject {
    /// The task refused.
    pub task_id: Uuid,
    /// Why.
    pub reason: String,
}

impl TaskReject {
    /// A `task_reject`.
    pub fn new(task_id: Uuid, reason: impl Into<String>) -> Self {
        Self {
            task_id,
            reason: reason.into(),
        }
    }
}

/// `task_progress` (agent → mesh).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskProgress {
    /// The task.
    pub task_id: Uuid,
    /// Fraction done, 0 to 1.
    pub progress: f64,
    /// What it is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl TaskProgress {
    /// A `task_progress`.
    pub fn new(task_id: Uuid, progress: f64) -> Self {
        Self {
            task_id,
            progress,
            message: None,
        }
    }
}

/// `task_complete` (agent → mesh).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskComplete {
    /// The task.
    pub task_id: Uuid,
    /// Its output.
    pub output: Value,
}

impl TaskComplete {
    /// A `task_complete`.
    pub fn new(task_id: Uuid, output: Value) -> Self {
        Self { task_id, output }
    }
}

/// `task_fail` (agent → mesh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskFail {
    /// The task.
    pub task_id: Uuid,
    /// What went wrong.
    pub error: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

impl TaskFail {
    /// A `task_fail`.
    pub fn new(task_id: Uuid, error: impl Into<String>, retryable: bool) -> Self {
        Self {
            task_id,
            error: error.into(),
            retryable,
        }
    }
}

/// `task_cancel` (mesh → agent): stop working on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskCancel {
    /// The task.
    pub task_id: Uuid,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TaskCancel {
    /// A `task_cancel`.
    pub fn new(task_id: Uuid) -> Self {
        Self {
            task_id,
            reason: None,
        }
    }
}

/// `task_submit` (agent → mesh): delegate a sub-task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSubmit {
    /// Chosen by the agent; echoed in `task_submitted`.
    pub request_id: String,
    /// The sub-task's kind.
    pub kind: String,
    /// Its input.
    pub input: Value,
    /// Capabilities it needs besides `kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_capabilities: Vec<String>,
    /// The task it is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    /// The W3C trace context to submit it in, so the sub-task joins the agent's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl TaskSubmit {
    /// A `task_submit`.
    pub fn new(request_id: impl Into<String>, kind: impl Into<String>, input: Value) -> Self {
        Self {
            request_id: request_id.into(),
            kind: kind.into(),
            input,
            required_capabilities: Vec::new(),
            parent: None,
            traceparent: None,
        }
    }
}

/// `task_submitted` (mesh → agent): the delegated task's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskSubmitted {
    /// The agent's `request_id`.
    pub request_id: String,
    /// The new task.
    pub task_id: Uuid,
}

impl TaskSubmitted {
    /// A `task_submitted`.
    pub fn new(request_id: impl Into<String>, task_id: Uuid) -> Self {
        Self {
            request_id: request_id.into(),
            task_id,
        }
    }
}

/// A task status as the wire spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting for an agent.
    Pending,
    /// Sent to an agent.
    Assigned,
    /// Taken by the agent.
    Accepted,
    /// Running.
    InProgress,
    /// Finished with an output.
    Completed,
    /// Failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Out of time.
    TimedOut,
}

/// `task_update` (mesh → agent): a task the agent submitted changed status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskUpdate {
    /// The task.
    pub task_id: Uuid,
    /// Its new status.
    pub status: TaskStatus,
    /// Its output, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Its error, once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TaskUpdate {
    /// A `task_update`.
    pub fn new(task_id: Uuid, status: TaskStatus) -> Self {
        Self {
            task_id,
            status,
            output: None,
            error: None,
        }
    }
}

/// A message in the extension range (`0x8000..=0xFFFF`), payload left to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    msg_type: MessageType,
    payload: Bytes,
}

impl Extension {
    /// An extension message; `None` when `msg_type` is below the extension range.
    pub fn new(msg_type: MessageType, payload: impl Into<Bytes>) -> Option<Self> {
        msg_type.is_extension().then(|| Self {
            msg_type,
            payload: payload.into(),
        })
    }

    /// Its type.
    pub fn msg_type(&self) -> MessageType {
        self.msg_type
    }

    /// Its payload (JSON by convention).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

macro_rules! catalogue {
    ($($variant:ident($ty:ty) = $konst:ident,)*) => {
        /// Any message of the catalogue.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Message {
            $(
                #[doc = concat!("See [`", stringify!($ty), "`].")]
                $variant($ty),
            )*
            /// An application-defined message.
            Extension(Extension),
        }

        impl Message {
            /// The message type it travels as.
            pub fn msg_type(&self) -> MessageType {
                match self {
                    $(Self::$variant(_) => MessageType::$konst,)*
                    Self::Extension(ext) => ext.msg_type(),
                }
            }

            /// Decodes a frame's payload by its type.
            ///
            /// An unknown type below the extension range is [`Error::UnknownType`]; a
            /// payload of the wrong shape is [`Error::BadPayload`]. Neither needs the
            /// connection closed.
            pub fn from_frame(frame: &Frame) -> Result<Self, Error> {
                let payload = frame.payload();
                let message = match frame.msg_type() {
                    $(MessageType::$konst => Self::$variant(parse(MessageType::$konst, payload)?),)*
                    t if t.is_extension() => {
                        Self::Extension(Extension { msg_type: t, payload: payload.clone() })
                    }
                    t => return Err(Error::UnknownType { msg_type: t.0 }),
                };
                message.validate()?;
                Ok(message)
            }

            /// The message as a standalone frame (payload uncompressed).
            pub fn to_frame(&self) -> Result<Frame, Error> {
                let payload = match self {
                    $(Self::$variant(m) => Bytes::from(serde_json::to_vec(m).map_err(std::io::Error::from)?),)*
                    Self::Extension(ext) => ext.payload().clone(),
                };
                Ok(Frame::new(self.msg_type(), payload))
            }

            /// Appends the message as one frame to `dst`.
            pub fn encode(&self, codec: &mut FrameCodec, dst: &mut BytesMut) -> Result<(), Error> {
                match self {
                    $(Self::$variant(m) => codec.encode_json(MessageType::$konst, m, dst),)*
                    Self::Extension(ext) => codec.encode_frame(ext.msg_type(), ext.payload(), dst),
                }
            }
        }

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Self {
                    Self::$variant(m)
                }
            }
        )*
    };
}

catalogue! {
    Hello(Hello) = HELLO,
    Welcome(Welcome) = WELCOME,
    Heartbeat(Heartbeat) = HEARTBEAT,
    Error(ErrorMessage) = ERROR,
    Goodbye(Goodbye) = GOODBYE,
    TaskAssign(TaskAssign) = TASK_ASSIGN,
    TaskAccept(TaskAccept) = TASK_ACCEPT,
    TaskReject(TaskReject) = TASK_REJECT,
    TaskProgress(TaskProgress) = TASK_PROGRESS,
    TaskComplete(TaskComplete) = TASK_COMPLETE,
    TaskFail(TaskFail) = TASK_FAIL,
    TaskCancel(TaskCancel) = TASK_CANCEL,
    TaskSubmit(TaskSubmit) = TASK_SUBMIT,
    TaskSubmitted(TaskSubmitted) = TASK_SUBMITTED,
    TaskUpdate(TaskUpdate) = TASK_UPDATE,
    DocOpen(DocOpen) = DOC_OPEN,
    DocSync(DocSync) = DOC_SYNC,
    DocUpdate(DocUpdate) = DOC_UPDATE,
    DocClose(DocClose) = DOC_CLOSE,
    JsonRpc(JsonRpcMessage) = JSONRPC,
}

impl From<Extension> for Message {
    fn from(ext: Extension) -> Self {
        Self::Extension(ext)
    }
}

impl Message {
    /// Range checks that the JSON shape alone does not express.
    fn validate(&self) -> Result<(), Error> {
        match self {
            Self::TaskProgress(p) if !(0.0..=1.0).contains(&p.progress) => {
                Err(Error::InvalidValue {
                    name: "task_progress",
                    reason: "progress must be within 0..=1",
                })
            }
            Self::Heartbeat(Heartbeat {
                load: Some(load), ..
            }) if !load.is_finite() || *load < 0.0 => Err(Error::InvalidValue {
                name: "heartbeat",
                reason: "load must be a non-negative number",
            }),
            _ => Ok(()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    msg_type: MessageType,
    payload: &[u8],
) -> Result<T, Error> {
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::BadPayload {
            name: msg_type.name().unwrap_or("message"),
            source: serde::de::Error::custom("the payload must be a JSON object"),
        });
    }
    serde_json::from_slice(payload).map_err(|source| Error::BadPayload {
        name: msg_type.name().unwrap_or("message"),
        source,
    })
}

impl Encoder<&Message> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, message: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        message.encode(self, dst)
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), Error> {
        message.encode(self, dst)
    }
}
