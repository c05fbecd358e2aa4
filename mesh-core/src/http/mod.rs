//! Layer 3, what every HTTP surface shares (feature `http`): the application state,
//! the one credential [`Gate`], the error type with stable codes ([`ApiError`]) and
//! extractors whose rejections are such errors. The surfaces — `hub`, `rest`, `mcp` —
//! sit above it as siblings; none of them imports another.

mod error;
mod events;
mod extract;
mod gate;
mod health;
mod jwt;
pub mod metrics;
mod middleware;
mod permit;
mod state;
mod stream;

pub use error::{ApiError, ErrorBody};
pub use events::{Bucket, EVENT_RING, EventLog};
pub use extract::{Json, Path, Query};
pub use gate::{AuthError, Gate, GateConfig, GateConfigError, permit};
pub use health::{healthz, readyz};
pub use jwt::{MIN_SECRET_LEN, sign_jwt};
pub use middleware::{Created, authenticate};
pub use state::{AppShared, AppState};
pub use stream::journal_stream;
