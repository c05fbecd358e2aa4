//! The JSON-RPC 2.0 envelope that MCP messages travel in (type `0x0301`, or WebSocket
//! text messages).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request id: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id.
    Number(i64),
    /// A string id.
    String(String),
}

/// The `error` member of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JsonRpcError {
    /// Error code; `-32601` is "method not found", `-32602` "invalid params".
    pub code: i64,
    /// Short description.
    pub message: String,
    /// Anything else the server wants to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl JsonRpcError {
    /// `-32700`: the text is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// `-32600`: not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// `-32601`: the method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// `-32602`: invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// `-32603`: internal error.
    pub const INTERNAL_ERROR: i64 = -32603;

    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// One JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMessage", into = "RawMessage")]
#[non_exhaustive]
pub enum JsonRpcMessage {
    /// A call that expects a response.
    Request {
        /// Matches the response to the request.
        id: RequestId,
        /// The method, e.g. `"tools/list"`.
        method: String,
        /// Its parameters.
        params: Option<Value>,
    },
    /// A call that expects no response.
    Notification {
        /// The method, e.g. `"notifications/initialized"`.
        method: String,
        /// Its parameters.
        params: Option<Value>,
    },
    /// A successful response.
    Response {
        /// The id of the request answered.
        id: RequestId,
        /// The result.
        result: Value,
    },
    /// An error response; `id` is `None` when the request could not be read.
    Error {
        /// The id of the request answered, if known.
        id: Option<RequestId>,
        /// What went wrong.
        error: JsonRpcError,
    },
}

impl JsonRpcMessage {
    /// Parses a JSON-RPC message from JSON text or bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::Error> {
        serde_json::from_slice(bytes).map_err(|source| crate::Error::BadPayload {
            name: "jsonrpc",
            source,
        })
    }
}

impl From<RequestId> for Value {
    fn from(id: RequestId) -> Self {
        match id {
            RequestId::Number(n) => Value::from(n),
            RequestId::String(s) => Value::String(s),
        }
    }
}

/// The wire shape: every member optional, classified on the way in.
#[derive(Serialize, Deserialize)]
struct RawMessage {
    jsonrpc: String,
    /// Absent for notifications; `null` in an error answering an unreadable request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<JsonRpcError>,
}

impl TryFrom<RawMessage> for JsonRpcMessage {
    type Error = &'static str;

    fn try_from(raw: RawMessage) -> Result<Self, &'static str> {
        if raw.jsonrpc != "2.0" {
            return Err("jsonrpc must be \"2.0\"");
        }
        let id = match raw.id {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(RequestId::String(s)),
            Some(Value::Number(n)) => Some(RequestId::Number(
                n.as_i64().ok_or("id must be an integer")?,
            )),
            Some(_) => return Err("id must be a number or a string"),
        };
        match (raw.method, raw.result, raw.error) {
            (Some(method), None, None) => Ok(match id {
                Some(id) => Self::Request {
                    id,
                    method,
                    params: raw.params,
                },
                None => Self::Notification {
                    method,
                    params: raw.params,
                },
            }),
            (None, Some(result), None) => match id {
                Some(id) => Ok(Self::Response { id, result }),
                None => Err("a result needs an id"),
            },
            (None, None, Some(error)) => Ok(Self::Error { id, error }),
            _ => Err("exactly one of method, result and error must be present"),
        }
    }
}

impl From<JsonRpcMessage> for RawMessage {
    fn from(message: JsonRpcMessage) -> Self {
        let mut raw = RawMessage {
            jsonrpc: "2.0".to_owned(),
            id: None,
            method: None,
            params: None,
            result: None,
            error: None,
        };
        match message {
            JsonRpcMessage::Request { id, method, params } => {
                raw.id = Some(id.into());
                raw.method = Some(method);
                raw.params = params;
            }
            JsonRpcMessage::Notification { method, params } => {
                raw.method = Some(method);
                raw.params = params;
            }
            JsonRpcMessage::Response { id, result } => {
                raw.id = Some(id.into());
                raw.result = Some(result);
            }
            JsonRpcMessage::Error { id, error } => {
                raw.id = Some(id.map_or(Value::Null, Value::from));
                raw.error = Some(error);
            }
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn classifies_the_four_kinds() {
        let cases = [
            (
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
                "request",
            ),
            (
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
                "notification",
            ),
            (json!({"jsonrpc":"2.0","id":"a","result":{}}), "response"),
            (
                json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}),
                "error",
            ),
        ];
        for (value, kind) in cases {
            let msg: JsonRpcMessage = serde_json::from_value(value.clone()).unwrap();
            let got = match &msg {
                JsonRpcMessage::Request { .. } => "request",
                JsonRpcMessage::Notification { .. } => "notification",
                JsonRpcMessage::Response { .. } => "response",
                JsonRpcMessage::Error { .. } => "error",
            };
            assert_eq!(got, kind);
            assert_eq!(serde_json::to_value(&msg).unwrap(), value);
        }
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        for bad in [
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","result":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":1}"#,
            r#"[1,2]"#,
        ] {
            let err = JsonRpcMessage::from_slice(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "bad_payload", "{bad}");
        }
    }
}
