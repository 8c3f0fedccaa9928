//! Files written by the server before its CRC-32 became `crc32fast` (same polynomial, so same
//! checksums): a snapshot, the key file and a log segment, committed as they were written.

use super::{config, master, start};
use crate::common::{Client, TempDir};
use fluxiondb::storage;
use serde_json::json;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pre-crc32fast");

#[test]
fn a_data_folder_written_before_crc32fast_loads() {
    let tmp = TempDir::new();
    for entry in std::fs::read_dir(FIXTURE).expect("fixture folder") {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.data().join(entry.file_name())).unwrap();
    }
    let server = start(config(tmp.data(), "always"), storage::real());
    let mut c = master(&server);
    assert_eq!(
        c.ok("cols", json!({})),
        json!({"collections": ["logs", "sensors"]})
    );
    assert_eq!(
        c.ok("qdoc", json!({"col":"sensors","doc":"t1","to":100})),
        json!({"records":[{"ts":2,"data":"héllo \"quoted\""}]})
    );
    assert_eq!(
        c.ok("qdoc", json!({"col":"sensors","doc":"t2","to":100})),
        json!({"records":[{"ts":5,"data":"x"},{"ts":6,"data":"after snapshot"}]})
    );
    assert_eq!(
        c.ok("qdoc", json!({"col":"logs","doc":"a/b","to":100})),
        json!({"records":[{"ts":7,"data":"z"}]})
    );
    assert_eq!(
        c.ok("gvals", json!({"col":"sensors"})),
        json!({"values":{"unit":"°C"}})
    );
    assert_eq!(
        c.ok("gvals", json!({"col":"logs"})),
        json!({"values":{"k":"v"}})
    );
    let mut reader = Client::open(server.port(), "reader-key", None);
    assert_eq!(reader.err("ins", json!([])), "permission denied");
    server.shutdown();
    server.join();
}
