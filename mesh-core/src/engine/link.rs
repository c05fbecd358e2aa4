//! [`AgentLink`]: how the engine reaches one connected agent, whatever carries it (a
//! WebSocket session of the hub, or a handler in the same process).

use mesh_protocol::Message;

/// How the engine talks to one connected agent: the hub gives it the connection's
/// sender, in-process agents a channel; tests can give it anything.
pub trait AgentLink: Send + Sync + 'static {
    /// Queues `message` for the agent without waiting; an error means the agent is
    /// gone or too slow, and the engine treats it as disconnected.
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error>;
    /// Queues `messages` together, in order (a routing pass's assignments to this
    /// agent): a transport that batches sends them in as few frames as it can. By
    /// default, one [`send`](Self::send) after another.
    fn send_all(&self, messages: Vec<Message>) -> Result<(), mesh_protocol::Error> {
        messages.into_iter().try_for_each(|m| self.send(m))
    }
    /// Ends the connection.
    fn close(&self, code: u16, reason: &str);
}

#[cfg(feature = "hub")]
impl AgentLink for mesh_protocol::ws::Sender {
    fn send(&self, message: Message) -> Result<(), mesh_protocol::Error> {
        self.try_send(message)
    }

    fn send_all(&self, messages: Vec<Message>) -> Result<(), mesh_protocol::Error> {
        self.try_send_all(messages)
    }

    fn close(&self, code: u16, reason: &str) {
        mesh_protocol::ws::Sender::close(self, code, reason);
    }
}
