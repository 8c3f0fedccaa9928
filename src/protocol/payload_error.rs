//! [`PayloadError`]: why a payload was refused, worded as docs/protocol.md#how-errors-are-chosen
//! gives it.

use super::fields::FieldError;
use std::fmt;

/// Why a payload was refused; the text after `invalid payload: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    NotJson,
    ExpectedObject,
    ExpectedArray,
    ElementNotObject(usize),
    Field(FieldError),
    FromAfterTo,
    FromTsAfterToTs,
    SinceWithAfterSeq,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid payload: ")?;
        match self {
            PayloadError::NotJson => f.write_str("data is not valid JSON"),
            PayloadError::ExpectedObject => f.write_str("expected a JSON object"),
            PayloadError::ExpectedArray => f.write_str("expected a JSON array"),
            PayloadError::ElementNotObject(i) => write!(f, "[{i}] must be a JSON object"),
            PayloadError::Field(e) => e.fmt(f),
            PayloadError::FromAfterTo => f.write_str("from must not be greater than to"),
            PayloadError::FromTsAfterToTs => f.write_str("fromTs must not be greater than toTs"),
            PayloadError::SinceWithAfterSeq => {
                f.write_str("since and after_seq cannot be used together")
            }
        }
    }
}

impl From<FieldError> for PayloadError {
    fn from(e: FieldError) -> Self {
        PayloadError::Field(e)
    }
}
