//! [`AgentLink`]: how the engine reaches one connected agent, whatever carries it (a
//! WebSocket session of the hub, or a handler in the same process).

use mesh_protocol::Message;

/// How the engine talks to one connected agent: the hub gives it the connection's
/// sender, in-process agents a channel; tests can give it anything.
pub trait AgentLink: Send + Sync + 'static {
    /// Queues `message` for the agent without waiting; an error means the agent is
    /// gone or too slow, and the engine treats it as disconnected.
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error>;
    /// Ends the connection.
    fn close(&self, code: u16, reason: &str);
}

#[cfg(feature = "hub")]
impl AgentLink for mesh_protocol::ws::Sender {
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error> {
        self.try_send(message)
    }

    fn close(&self, code: u16, reason: &str) {
        mesh_protocol::ws::Sender::close(self, code, reason);
    }
}
