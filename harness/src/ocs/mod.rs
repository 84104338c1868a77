//! Typed OCS client over crossbar's HTTP call bridge. This module owns everything about
//! talking to OCS agents: the transport seam ([`Transport`], [`HttpBridge`]), the reply
//! types ([`Reply`], [`Session`], [`AgentApi`], ...) and the per-agent calls
//! ([`OcsClient`], [`AgentClient`]). It knows nothing about Docker.
//!
//! Layers, bottom up:
//! - [`transport`]: one WAMP call → the return value or a [`CallError`] (WAMP error, HTTP
//!   error, transport failure, undecodable body).
//! - [`protocol`]: decoding of return values into typed structures, keeping the raw JSON.
//! - [`client`]: `get_api`/`start`/`status`/`wait`/`stop`/`abort` on `<root>.<id>[.ops]`.

pub mod client;
pub mod protocol;
pub mod transport;

#[cfg(test)]
mod test_server;

pub use client::{
    instance_id_bad_char, instance_id_char_ok, validate_address_root, AgentClient, ClientError,
    OcsClient, WAIT_HTTP_MARGIN,
};
pub use protocol::{
    AgentApi, Message, OpCode, OpInfo, OpState, OpType, Reply, ResponseCode, Session,
    SessionStatus, UnknownName,
};
pub use transport::{
    decode_reply, CallError, CallOptions, ErrorBody, HttpBridge, Transport, WampError,
    DEFAULT_HTTP_TIMEOUT,
};
