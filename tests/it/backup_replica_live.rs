//! A read replica's live side, end to end over a real `file://` bucket: the writes it copies
//! from its primary are pushed to its own subscribers (every push type, `since` and
//! `after_seq`), and a key the primary removes closes the replica's connections that use it.

use crate::backup::{http_get, now_ms, primary, Bucket, WAIT};
use crate::backup_replica::{count, insert, key_works, replica};
use crate::common::{wait_until, Client, Server, TempDir};
use crate::subscriptions::{push, sub};
use serde_json::{json, Value};

/// A subscriber that waits as long as the replica may take to apply (a bound, not a timing).
fn subscriber(server: &Server, key: &str) -> Client {
    let c = server.open(key, None);
    c.set_read_timeout(WAIT);
    c
}

pub fn assert_ready(port: u16) {
    let (status, body) = http_get(port, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"));
}

/// `push` with its sequence number counted from `base`.
fn rebased(mut push: Value, base: u64) -> Value {
    let seq = push["seq"].as_u64().expect("seq");
    push["seq"] = json!(seq - base);
    push
}

/// A primary with `m/t` at 1..=3, and a replica that has applied them.
fn pair(bucket: &Bucket, dir: &TempDir) -> (Server, Server) {
    let p = primary(bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 3);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let r = replica(bucket, dir.data());
    let mut rc = r.master();
    assert!(
        wait_until(WAIT, || count(&mut rc, "t") == 3),
        "{}",
        r.stderr_tail()
    );
    (p, r)
}

#[test]
fn a_replica_pushes_what_it_applies_as_the_primary_pushes_it() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let (p, r) = pair(&bucket, &dir);
    let mut on_primary = subscriber(&p, crate::common::MASTER);
    let mut on_replica = subscriber(&r, crate::common::MASTER);
    let mut backlog = subscriber(&r, crate::common::MASTER);
    let (_, pbase) = sub(&mut on_primary, json!({"col":"m"}));
    let (_, rbase) = sub(&mut on_replica, json!({"col":"m"}));
    let (_, bbase) = sub(&mut backlog, json!({"col":"m","since":0}));
    assert_eq!(bbase, rbase, "the replica applied something meanwhile");
    assert_eq!(
        push(&mut backlog),
        json!({"type":"rec","sub":"s1","col":"m","seq":rbase,"records":[
            {"doc":"t","ts":1,"data":"v1"},{"doc":"t","ts":2,"data":"v2"},{"doc":"t","ts":3,"data":"v3"}]})
    );

    let mut pc = p.master();
    pc.ok(
        "ins",
        json!([{"col":"m","doc":"t","ts":10,"data":"a\"q"},{"col":"m","doc":"u","ts":11,"data":"b"}]),
    );
    pc.ok("sval", json!({"col":"m","key":"k","value":"v"}));
    pc.ok("drec", json!({"col":"m","doc":"t","ts":1}));
    pc.ok("drec", json!({"col":"m","doc":"t","ts":99}));
    pc.ok("drrng", json!({"col":"m","doc":"t","fromTs":2,"toTs":3}));
    pc.ok(
        "dmrec",
        json!([{"col":"m","doc":"t","ts":10},{"col":"m","doc":"u","ts":11},{"col":"m","doc":"u","ts":5}]),
    );
    pc.ok("ins", json!([{"col":"m","doc":"u","ts":12,"data":"c"}]));
    pc.ok("ddoc", json!({"col":"m","doc":"u"}));
    pc.ok("dcol", json!({"col":"m"}));
    // ins, drec, drrng, dmrec (two documents: two frames), ins, ddoc, dcol.
    let frames = 8;
    let primary_pushes: Vec<Value> = (0..frames)
        .map(|_| rebased(push(&mut on_primary), pbase))
        .collect();
    assert_eq!(
        primary_pushes[0],
        json!({"type":"rec","sub":"s1","col":"m","seq":1,"records":[
            {"doc":"t","ts":10,"data":"a\"q"},{"doc":"u","ts":11,"data":"b"}]})
    );
    assert_eq!(
        primary_pushes[7],
        json!({"type":"del","sub":"s1","col":"m","seq":7})
    );
    let replica_pushes: Vec<Value> = (0..frames).map(|_| push(&mut on_replica)).collect();
    let rebased_replica: Vec<Value> = replica_pushes
        .iter()
        .map(|v| rebased(v.clone(), rbase))
        .collect();
    assert_eq!(rebased_replica, primary_pushes);
    let after_backlog: Vec<Value> = (0..frames).map(|_| push(&mut backlog)).collect();
    assert_eq!(after_backlog, replica_pushes);

    // A resume from the replica's own numbers replays its history.
    let mut resumed = subscriber(&r, crate::common::MASTER);
    let (_, seq) = sub(&mut resumed, json!({"col":"m","after_seq":rbase + 2}));
    assert_eq!(seq, rbase + 7);
    let replayed: Vec<Value> = (0..frames - 2).map(|_| push(&mut resumed)).collect();
    assert_eq!(replayed, replica_pushes[2..]);

    let mut rc = r.master();
    assert_eq!(rc.ok("cols", json!({})), json!({"collections":[]}));
    assert_ready(r.port);
}

#[test]
fn a_key_removed_on_the_primary_closes_the_replicas_connections_that_use_it() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let (p, r) = pair(&bucket, &dir);
    let mut pc = p.master();
    pc.ok(
        "keys",
        json!({"action":"add","key":"temp","scope":"readonly"}),
    );
    pc.ok(
        "keys",
        json!({"action":"add","key":"stays","scope":"readonly"}),
    );
    assert!(wait_until(WAIT, || key_works(r.port, "temp")
        && key_works(r.port, "stays")));
    let mut gone = subscriber(&r, "temp");
    let mut kept = subscriber(&r, "stays");
    sub(&mut gone, json!({"col":"m"}));
    sub(&mut gone, json!({"col":"other"}));
    sub(&mut kept, json!({"col":"m"}));
    insert(&mut pc, "t", 4, 1);
    assert_eq!(push(&mut gone)["records"][0]["ts"], 4);
    assert_eq!(push(&mut kept)["records"][0]["ts"], 4);

    pc.ok("keys", json!({"action":"remove","key":"temp"}));
    let mut ends = vec![push(&mut gone), push(&mut gone)];
    ends.sort_by(|a, b| a["sub"].as_str().cmp(&b["sub"].as_str()));
    assert_eq!(
        ends,
        [
            json!({"type":"subend","sub":"s1","error":"API key revoked"}),
            json!({"type":"subend","sub":"s2","error":"API key revoked"})
        ]
    );
    assert_eq!(gone.recv_close(), (1008, "API key revoked".to_string()));
    assert_eq!(
        Client::open_expect_close(r.port, "/?api-key=temp"),
        (1008, "Unknown API key".to_string())
    );

    // The other key's connection and subscription go on.
    insert(&mut pc, "t", 5, 1);
    assert_eq!(push(&mut kept)["records"][0]["ts"], 5);
    assert_ready(r.port);
}

/// A record retention drops as it is inserted is pushed neither by the primary nor by its
/// replica, and the write takes a sequence number on both.
#[test]
fn records_retention_drops_at_once_are_not_pushed_by_the_replica_either() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let (p, r) = pair(&bucket, &dir);
    let mut pc = p.master();
    pc.ok("sret", json!({"col":"r","max_records":1}));
    pc.ok("ins", json!([{"col":"r","doc":"d","ts":10,"data":"new"}]));
    let mut rc = r.master();
    let newest = json!({"records":[{"ts":10,"data":"new"}]});
    assert!(wait_until(WAIT, || rc
        .ok("qdoc", json!({"col":"r","doc":"d","to":100}))
        == newest));
    let mut on_primary = subscriber(&p, crate::common::MASTER);
    let mut on_replica = subscriber(&r, crate::common::MASTER);
    let (_, pbase) = sub(&mut on_primary, json!({"col":"r"}));
    let (_, rbase) = sub(&mut on_replica, json!({"col":"r"}));
    pc.ok("ins", json!([{"col":"r","doc":"d","ts":5,"data":"old"}]));
    pc.ok(
        "ins",
        json!([{"col":"r","doc":"d","ts":30,"data":"a"},{"col":"r","doc":"d","ts":40,"data":"b"}]),
    );
    let expected = json!({"type":"rec","sub":"s1","col":"r","seq":2,"records":[
        {"doc":"d","ts":40,"data":"b"}]});
    assert_eq!(rebased(push(&mut on_primary), pbase), expected);
    assert_eq!(rebased(push(&mut on_replica), rbase), expected);
}
