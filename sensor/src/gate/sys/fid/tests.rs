//! The FID-reporting group's event parser, on encoded and random bytes, and a real rename as root.

use super::encode::event;
use super::*;
use proptest::prelude::*;

const OLD: u8 = libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME;
const NEW: u8 = libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME;

fn handles<'a>(ev: &FidEvent<'a>) -> Vec<HandleInfo<'a>> {
    ev.infos()
        .filter_map(|i| match i {
            Info::Handle(h) => Some(h),
            Info::Other { .. } => None,
        })
        .collect()
}

#[test]
fn parses_events_and_their_handle_records() {
    let mut buf = event(
        libc::FAN_RENAME | libc::FAN_ONDIR,
        &[
            (OLD, [1, 2], b"oldhandle", b"a"),
            (NEW, [3, 4], b"nh", b"bee"),
        ],
    );
    buf.extend(event(libc::FAN_Q_OVERFLOW, &[]));
    let ev: Vec<_> = FidEvents::new(&buf).collect();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].mask, libc::FAN_RENAME | libc::FAN_ONDIR);
    assert_eq!(ev[0].pid, 42);
    let h = handles(&ev[0]);
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].kind, h[0].fsid, h[0].name), (OLD, [1, 2], &b"a"[..]));
    assert_eq!(
        (h[1].kind, h[1].fsid, h[1].name),
        (NEW, [3, 4], &b"bee"[..])
    );
    // The handle as open_by_handle_at takes it: handle_bytes, handle_type, the bytes.
    assert_eq!(&h[0].handle[..4], &9u32.to_ne_bytes());
    assert_eq!(&h[0].handle[8..], b"oldhandle");
    assert_eq!(ev[1].mask, libc::FAN_Q_OVERFLOW);
    assert_eq!(ev[1].infos().count(), 0);
}

#[test]
fn an_event_longer_than_the_buffer_ends_the_walk() {
    let mut buf = event(libc::FAN_RENAME, &[(OLD, [1, 2], b"h", b"a")]);
    buf[0..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert_eq!(FidEvents::new(&buf).count(), 0);
    let buf = event(libc::FAN_RENAME, &[(OLD, [1, 2], b"h", b"a")]);
    assert_eq!(FidEvents::new(&buf[..buf.len() - 1]).count(), 0);
}

#[test]
fn a_zero_length_event_or_record_ends_the_walk_instead_of_looping() {
    let mut buf = event(libc::FAN_RENAME, &[]);
    buf[0..4].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(FidEvents::new(&buf).count(), 0);
    let mut buf = event(libc::FAN_RENAME, &[(OLD, [1, 2], b"h", b"a")]);
    buf[META_LEN + 2..META_LEN + 4].copy_from_slice(&0u16.to_ne_bytes());
    let ev: Vec<_> = FidEvents::new(&buf).collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].infos().count(), 0);
}

#[test]
fn a_handle_longer_than_its_record_is_skipped() {
    let mut buf = event(
        libc::FAN_RENAME,
        &[(OLD, [1, 2], b"h", b"a"), (NEW, [1, 2], b"h", b"b")],
    );
    buf[META_LEN + HANDLE_AT..META_LEN + HANDLE_AT + 4].copy_from_slice(&500u32.to_ne_bytes());
    let ev: Vec<_> = FidEvents::new(&buf).collect();
    let h = handles(&ev[0]);
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].kind, h[0].name), (NEW, &b"b"[..]));
}

#[test]
fn records_of_other_types_are_passed_over() {
    let mut buf = event(libc::FAN_RENAME, &[(NEW, [1, 2], b"h", b"b")]);
    // A pidfd record (header and an i32) before the handle record.
    let mut pidfd = vec![libc::FAN_EVENT_INFO_TYPE_PIDFD, 0];
    pidfd.extend_from_slice(&8u16.to_ne_bytes());
    pidfd.extend_from_slice(&7i32.to_ne_bytes());
    buf.splice(META_LEN..META_LEN, pidfd);
    let len = buf.len() as u32;
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
    let ev: Vec<_> = FidEvents::new(&buf).collect();
    let infos: Vec<_> = ev[0].infos().collect();
    assert_eq!(infos.len(), 2);
    assert_eq!(
        infos[0],
        Info::Other {
            kind: libc::FAN_EVENT_INFO_TYPE_PIDFD
        }
    );
    assert!(matches!(infos[1], Info::Handle(h) if h.name == b"b"));
}

#[test]
fn resolve_dir_refuses_a_handle_shorter_than_it_says() {
    let Ok(group) = FidGroup::new() else {
        return; // no fanotify (not root): the check comes before any system call anyway
    };
    let mut handle = 100u32.to_ne_bytes().to_vec();
    handle.extend_from_slice(&[0; 12]);
    assert_eq!(group.resolve_dir([0, 0], &handle), None);
    assert_eq!(group.resolve_dir([0, 0], &[1, 2]), None);
}

/// As root: a directory renamed on a marked filesystem comes back as an event whose old and new
/// handles resolve to the parent directories; after unmarking, renames raise nothing.
#[test]
fn reports_a_directory_rename_with_resolvable_handles_when_privileged() {
    let test = "reports_a_directory_rename_with_resolvable_handles_when_privileged";
    if !crate::test_support::is_root() {
        crate::test_support::skip_or_fail(test, "needs root (fanotify, open_by_handle_at)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("a/moved")).unwrap();
    std::fs::create_dir(root.join("b")).unwrap();
    let group = FidGroup::new().expect("FID group (Linux 5.9+)");
    let mask = libc::FAN_RENAME | libc::FAN_ONDIR;
    group.mark_filesystem(&root, mask).expect("mark");
    std::fs::rename(root.join("a/moved"), root.join("b/there")).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    // Other processes rename on this filesystem too: read until drained, find ours by its names.
    let mut renamed = None;
    loop {
        let n = group.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        for ev in FidEvents::new(&buf[..n]) {
            let h = handles(&ev);
            let old = h.iter().find(|h| h.kind == OLD && h.name == b"moved");
            let new = h.iter().find(|h| h.kind == NEW && h.name == b"there");
            if let (Some(old), Some(new)) = (old, new) {
                let owned = |h: &HandleInfo| (h.fsid, h.handle.to_vec());
                renamed = Some((ev.mask, owned(old), owned(new)));
            }
        }
    }
    let (ev_mask, old, new) = renamed.expect("our rename among the events");
    assert_eq!(ev_mask & mask, mask);
    assert_eq!(group.resolve_dir(old.0, &old.1), Some(root.join("a")));
    assert_eq!(group.resolve_dir(new.0, &new.1), Some(root.join("b")));
    group.unmark_filesystem(&root, mask).expect("unmark");
    assert_eq!(
        group.resolve_dir(old.0, &old.1),
        None,
        "directory forgotten"
    );
    while group.read(&mut buf).expect("read") > 0 {} // others' renames queued before the unmark
    std::fs::rename(root.join("b/there"), root.join("a/back")).unwrap();
    assert_eq!(
        group.read(&mut buf).expect("read"),
        0,
        "no event once unmarked"
    );
}

/// Every slice the parser hands out lies inside the buffer it was given.
fn inside(buf: &[u8], part: &[u8]) -> bool {
    let (b, p) = (buf.as_ptr_range(), part.as_ptr_range());
    p.start >= b.start && p.end <= b.end
}

/// Walks everything; checks that what comes out lies in `buf` and is within the lengths it claims.
fn walk_all(buf: &[u8]) {
    for ev in FidEvents::new(buf).take(buf.len() + 1) {
        assert!(inside(buf, ev.records));
        for info in ev.infos().take(buf.len() + 1) {
            if let Info::Handle(h) = info {
                assert!(inside(buf, h.handle) && inside(buf, h.name));
                let hb = u32::from_ne_bytes(h.handle[..4].try_into().unwrap()) as usize;
                assert_eq!(h.handle.len(), FILE_HANDLE_HEADER + hb);
                assert!(!h.name.contains(&0));
            }
        }
    }
}

/// A buffer of a few well-formed events, for mangling.
fn valid_events() -> Vec<u8> {
    let mut buf = event(
        libc::FAN_RENAME | libc::FAN_ONDIR,
        &[
            (OLD, [1, 2], b"oldhandle", b"a"),
            (NEW, [1, 2], b"nh", b"bee"),
        ],
    );
    buf.extend(event(libc::FAN_Q_OVERFLOW, &[]));
    buf.extend(event(
        libc::FAN_RENAME,
        &[(libc::FAN_EVENT_INFO_TYPE_DFID, [5, 6], b"12345678", b"")],
    ));
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes: the parser never panics, never loops, never hands out bytes outside the buffer.
    #[test]
    fn random_bytes_never_break_the_parser(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        walk_all(&buf);
    }

    /// Random bytes with a valid event header (so the walk reaches the info records).
    #[test]
    fn random_records_never_break_the_parser(
        mask: u64,
        records in proptest::collection::vec(any::<u8>(), 0..256),
        claimed in any::<u32>(),
    ) {
        let mut buf = event(mask, &[]);
        buf.extend_from_slice(&records);
        let len = if claimed % 2 == 0 { buf.len() as u32 } else { claimed };
        buf[0..4].copy_from_slice(&len.to_ne_bytes());
        walk_all(&buf);
    }

    /// Well-formed events with bytes overwritten and the end cut off anywhere.
    #[test]
    fn mangled_events_never_break_the_parser(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        let mut buf = valid_events();
        for (at, byte) in edits {
            let n = buf.len();
            buf[at % n] = byte;
        }
        let cut = cut % (buf.len() + 1);
        walk_all(&buf[..cut]);
    }
}
