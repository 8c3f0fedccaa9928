//! The wire format and nothing else: the envelope, the typed payloads and their validation,
//! the `/pattern/flags` matcher and response encoding. Pure functions.

pub mod encode;
pub mod envelope;
pub mod fields;
mod insert_scan;
pub mod json;
pub(crate) mod members;
pub mod pattern;
pub mod payload;
pub(crate) mod reply;
pub(crate) mod request;
pub mod scan;
pub mod spec;

pub use request::PayloadError;
