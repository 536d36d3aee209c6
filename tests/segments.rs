//! Segment files: a store written before them opens and keeps every message; deleted
//! messages are wiped at once and their segments compacted or unlinked; reconciliation
//! removes segments nothing points into and reports ranges that are gone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Client, TestGateway, queued_id};
use reclaim::capacity::StorageLimits;
use reclaim::store::{MessageId, MessageMeta, NoticePlan, QuarantineStore, StagingLimits, Store};
use tokio::io::AsyncReadExt;

fn files_in(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_segments_opens_and_keeps_everything() {
    // First as the previous release stored mail: every message a file of its own.
    let mut gw = TestGateway::start_custom(common::Extra {
        store: "inline_max = \"0\"",
        tls: true,
        ..common::Extra::default()
    })
    .await;
    let mut ids = Vec::new();
    let (mut c, _) = Client::connect(gw.addr).await;
    for i in 0..3 {
        let body = format!("Subject: before {i}\r\n\r\nstored as a file\r\n");
        ids.push(queued_id(
            &c.send_message("a@p.example", &["b@old.example"], body.as_bytes())
                .await,
        ));
    }
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), gw.export(id).await);
    }
    gw.stop().await;
    assert_eq!(files_in(&gw.store.join("messages"), ".age").len(), 3);

    // Then with segments (the default): the old files stay where they are and are read
    // as before; new mail goes into a segment.
    let config = std::fs::read_to_string(&gw.config_path).expect("config");
    std::fs::write(&gw.config_path, config.replace("inline_max = \"0\"", "")).expect("config");
    gw.restart().await;
    let (mut c, _) = Client::connect(gw.addr).await;
    for i in 0..2 {
        let body = format!("Subject: after {i}\r\n\r\nstored in a segment\r\n");
        ids.push(queued_id(
            &c.send_message("a@p.example", &["b@old.example"], body.as_bytes())
                .await,
        ));
    }
    assert_eq!(files_in(&gw.store.join("messages"), ".age").len(), 3);
    assert_eq!(files_in(&gw.store.join("segments"), ".seg").len(), 1);
    assert_eq!(gw.list().await.len(), 5);
    for (id, bytes) in &before {
        assert_eq!(&gw.export(id).await, bytes, "{id} reads as before");
    }
    assert!(String::from_utf8_lossy(&gw.export(&ids[4]).await).contains("Subject: after 1\r\n"));

    // Deleting one of each kind; a restart then finds everything in order.
    gw.cli_ok(&["delete", &ids[0], &ids[3], "--reason", "test"])
        .await;
    gw.stop().await;
    let (store, report) = Store::open(&gw.store).expect("reopen");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.messages, 3);
    assert_eq!(store.count().await.expect("count"), 3);
}

/// Stores `body` as a message (the store takes any bytes; the gateway gives it age files).
async fn put(store: &Store, body: &[u8]) -> MessageId {
    let mut staged = store.create_blob(MessageId::new()).await.expect("stage");
    staged.write(body.to_vec()).await.expect("write");
    let meta = MessageMeta {
        received_at: 1,
        size: body.len() as u64,
        sealed_size: 0,
        domains: vec!["old.example".to_owned()],
        notice: None,
        sealed_to: Vec::new(),
    };
    store
        .commit(staged, meta, b"summary".to_vec(), NoticePlan::default())
        .await
        .expect("commit")
        .0
}

async fn read(store: &Store, id: MessageId) -> Vec<u8> {
    let sealed = store.read_sealed(id).await.expect("read").expect("present");
    let mut out = Vec::new();
    let mut reader = sealed.reader;
    reader.read_to_end(&mut out).await.expect("read all");
    assert_eq!(out.len() as u64, sealed.length);
    out
}

/// 600 bytes that start as an age file does (reconciliation looks for that header).
fn body(i: usize) -> Vec<u8> {
    let mut out = b"age-encryption.org/v1\n".to_vec();
    out.extend(
        format!("MARKER-{i:04}-")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(600 - out.len()),
    );
    out
}

fn segment_bytes(root: &Path) -> Vec<u8> {
    files_in(&root.join("segments"), ".seg")
        .iter()
        .flat_map(|p| std::fs::read(p).expect("read segment"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_wipe_at_once_and_segments_give_their_space_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    // Small segments, so that a handful of messages fill several.
    let staging = StagingLimits {
        inline_max: 4096,
        memory: 1 << 20,
        segment_size: 2000,
    };
    let open = || Store::open_tuned(&root, StorageLimits::default(), staging).expect("open");
    let (store, _) = open();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(put(&store, &body(i)).await);
    }
    // A message past inline_max gets a file of its own, as large mail does.
    let large: Vec<u8> = b"LARGE-".repeat(1000);
    let large_id = put(&store, &large).await;
    assert!(
        root.join("messages")
            .join(format!("{large_id}.age"))
            .exists()
    );
    let segments_before = files_in(&root.join("segments"), ".seg").len();
    assert_eq!(
        segments_before, 3,
        "600-byte messages, four to a 2000-byte segment"
    );
    let bytes_before = segment_bytes(&root).len();

    // Delete all but every fourth message: the deleted ones' bytes are gone at once.
    let kept = |i: &usize| i.is_multiple_of(4);
    let doomed: Vec<MessageId> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept(i))
        .map(|(_, id)| *id)
        .collect();
    let deleted = store.delete(&doomed).await.expect("delete");
    assert!(deleted.iter().all(|d| *d));
    let on_disk = segment_bytes(&root);
    for i in (0..12).filter(|i| !kept(i)) {
        let marker = format!("MARKER-{i:04}-");
        assert!(
            !contains(&on_disk, marker.as_bytes()),
            "{marker} still on disk"
        );
    }
    // What was kept reads back whole, wherever compaction moved it.
    for i in (0..12).filter(kept) {
        assert_eq!(read(&store, ids[i]).await, body(i), "message {i}");
    }
    assert_eq!(read(&store, large_id).await, large);
    // The two full segments, a quarter live each, were compacted into one; the segment
    // being appended to stays as it is.
    let segments_after = files_in(&root.join("segments"), ".seg").len();
    assert_eq!(
        segments_after, 2,
        "{segments_after} segment files after compaction"
    );
    assert_eq!(
        segment_bytes(&root).len(),
        bytes_before - 2 * 2400 + 2 * 600
    );
    drop(store);

    // Reopened: clean, and every kept message still there.
    let (store, report) = open();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.messages, 4);
    for i in (0..12).filter(kept) {
        assert_eq!(read(&store, ids[i]).await, body(i), "message {i}");
    }
    drop(store);

    // A segment file nothing points into (a crash before its index commit) is removed at
    // start; a segment cut short is reported, and its entries kept.
    let segments = files_in(&root.join("segments"), ".seg");
    std::fs::write(
        root.join("segments").join("00000000000000ff.seg"),
        b"unacked",
    )
    .expect("stray segment");
    let last = segments.last().expect("a segment");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open segment");
    file.set_len(10).expect("truncate");
    let (store, report) = open();
    assert_eq!(report.stale_segments_removed, 1);
    assert!(!root.join("segments").join("00000000000000ff.seg").exists());
    assert!(!report.missing_blobs.is_empty(), "{report:?}");
    for id in &report.missing_blobs {
        assert!(store.get(*id).await.expect("get").is_some(), "entry kept");
    }
}
