//! The configuration of a server started inside the test process (`fluxiondb::start`,
//! `fluxiondb::Server::start`): flags parsed exactly as the binary parses its command line.

use super::MASTER;
use fluxiondb::{Args, Config};

/// The configuration of `fluxiondb --secret-key master-key --bind 127.0.0.1 --port 0
/// --log-level off` followed by `extra`: loopback, a free port, no log output.
pub fn in_process_config(extra: &[&str]) -> Config {
    let mut argv = vec![
        "fluxiondb",
        "--secret-key",
        MASTER,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "off",
    ];
    argv.extend_from_slice(extra);
    let args = <Args as clap::Parser>::try_parse_from(argv).expect("flags");
    Config::from_args(args).expect("configuration")
}
