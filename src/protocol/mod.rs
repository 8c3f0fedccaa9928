//! The wire format and nothing else: the envelope, the typed payloads and their validation,
//! the `/pattern/flags` matcher and response encoding. Pure functions.

pub(crate) mod batch_spare;
pub(crate) mod declare;
mod digits;
pub mod encode;
pub mod envelope;
pub mod fields;
mod insert_escaped;
mod insert_scan;
pub mod into_static;
pub mod json;
pub(crate) mod members;
pub mod pattern;
pub mod payload;
mod payload_error;
mod quoted_body;
mod read_scan;
pub mod record_data;
pub mod record_out;
pub(crate) mod reply;
pub mod scan;
pub mod spec;
mod spelling;

pub use payload_error::PayloadError;
