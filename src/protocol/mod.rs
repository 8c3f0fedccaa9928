//! The wire format and nothing else: the envelope, one typed payload per message type with its
//! validation, the `/pattern/flags` matcher and response encoding. Pure functions.

pub mod encode;
pub mod envelope;
pub mod fields;
mod insert_scan;
pub mod json;
pub mod message;
pub mod pattern;
pub mod request;
pub mod scan;

pub use message::{MsgType, Permission};
pub use request::{PayloadError, Request};
