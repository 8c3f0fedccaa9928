//! The decoder fuzzer's generator and allocation counter, as a library: the `make fuzz` binary
//! (`main.rs`) and the server's test suite (`tests/it/decoder_fuzz.rs`, a dev-dependency) use
//! the same code.
//!
//! Linking this library installs [`counting`]'s global allocator in the program.

pub mod counting;
pub mod gen;
