use super::*;
use crate::clamd::settings::ClamdSettings;

#[derive(Default)]
struct Fake {
    jobs: Vec<Job>,
    full: bool,
    signals: Vec<libc::c_int>,
    refused: usize,
}

impl Ctx for Fake {
    fn submit(&mut self, job: Job) -> Result<(), Box<Job>> {
        if self.full {
            return Err(Box::new(job));
        }
        self.jobs.push(job);
        Ok(())
    }
    fn version(&self) -> String {
        "ClamAV 1.4.6/1/Thu Jan  1 00:00:00 1970".into()
    }
    fn stats(&self) -> String {
        "POOLS: 1".into()
    }
    fn signal(&mut self, sig: libc::c_int) {
        self.signals.push(sig);
    }
    fn count(&mut self, _: Option<Name>) {}
    fn refused(&mut self) {
        self.refused += 1;
    }
}

fn conn(unix: bool) -> Conn {
    let s = ClamdSettings {
        stream_max_length: 100,
        ..ClamdSettings::default()
    };
    Conn::new(
        ConnKey {
            slot: 0,
            generation: 1,
        },
        Client::default(),
        unix,
        &s,
        std::env::temp_dir(),
    )
}

fn feed(c: &mut Conn, ctx: &mut Fake, bytes: &[u8]) {
    c.received(bytes, VecDeque::new());
    c.advance(ctx);
}

fn fd() -> OwnedFd {
    OwnedFd::from(tempfile::tempfile().unwrap())
}

fn chunk(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

#[test]
fn one_request_then_the_close() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zPING\0zPING\0");
    assert_eq!(c.out, b"PONG\0");
    assert!(c.closing && !c.finished(), "the reply is still to go out");
    c.out.clear();
    assert!(c.finished());
    assert!(!c.wants_input());
}

#[test]
fn a_request_in_pieces_and_an_unknown_one() {
    let (mut c, mut f) = (conn(true), Fake::default());
    for b in b"nVERSION\n" {
        feed(&mut c, &mut f, &[*b]);
    }
    assert_eq!(c.out, b"ClamAV 1.4.6/1/Thu Jan  1 00:00:00 1970\n");
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zHELLO\0");
    assert_eq!(c.out, b"UNKNOWN COMMAND\0");
    assert!(c.closing);
    assert_eq!(f.refused, 1);
}

#[test]
fn scans_go_to_the_workers_and_their_reply_closes() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zSCAN /tmp/x\0");
    assert_eq!(f.jobs.len(), 1);
    assert!(matches!(&f.jobs[0].work, Work::Path { cmd: Name::Scan, path } if path == b"/tmp/x"));
    assert!(!c.finished());
    assert_eq!(c.waiting(), Waiting::Nothing);
    c.done(b"/tmp/x: OK\0");
    assert_eq!(c.out, b"/tmp/x: OK\0");
    c.out.clear();
    assert!(c.finished());
}

#[test]
fn a_full_queue_holds_the_request_and_stops_reading() {
    let (mut c, mut f) = (conn(true), Fake::default());
    f.full = true;
    feed(&mut c, &mut f, b"zSCAN /a\0");
    assert!(f.jobs.is_empty() && !c.wants_input());
    f.full = false;
    c.advance(&mut f);
    assert_eq!(f.jobs.len(), 1);
}

#[test]
fn instream_chunks_limit_and_cut() {
    let (mut c, mut f) = (conn(true), Fake::default());
    let mut req = b"zINSTREAM\0".to_vec();
    req.extend(chunk(b"hello "));
    req.extend(&chunk(b"world")[..3]);
    feed(&mut c, &mut f, &req);
    assert_eq!(c.waiting(), Waiting::Data);
    let mut rest = chunk(b"world")[3..].to_vec();
    rest.extend(chunk(b""));
    feed(&mut c, &mut f, &rest);
    match &f.jobs[0].work {
        Work::Stream(Spool::Memory(v)) => assert_eq!(v, b"hello world"),
        w => panic!("{w:?}"),
    }
    // Over StreamMaxLength (100 here): the reply and the close, before the data.
    let (mut c, mut f) = (conn(true), Fake::default());
    let mut req = b"nINSTREAM\n".to_vec();
    req.extend(&chunk(&[b'a'; 60]));
    req.extend(&(41u32).to_be_bytes());
    feed(&mut c, &mut f, &req);
    assert_eq!(c.out, b"INSTREAM size limit exceeded. ERROR\n");
    assert!(c.closing && f.jobs.is_empty());
    // A chunk cut by the client's close: nothing to answer.
    let (mut c, mut f) = (conn(true), Fake::default());
    let mut req = b"zINSTREAM\0".to_vec();
    req.extend(&(100u32).to_be_bytes());
    req.extend(&[0u8; 10]);
    feed(&mut c, &mut f, &req);
    c.eof = true;
    c.advance(&mut f);
    assert!(c.out.is_empty() && c.finished());
}

#[test]
fn sessions_number_their_replies_and_end() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zIDSESSION\0zPING\0zSCAN /a\0zVERSION\0");
    assert_eq!(
        c.out,
        b"1: PONG\x003: ClamAV 1.4.6/1/Thu Jan  1 00:00:00 1970\0"
    );
    assert_eq!(f.jobs[0].seq, Some(2));
    assert!(c.wants_input());
    assert_eq!(c.waiting(), Waiting::Nothing, "a reply is still due");
    feed(&mut c, &mut f, b"zEND\0");
    c.out.clear();
    assert!(!c.finished(), "END waits for the pending scan");
    c.done(b"2: /a: OK\0");
    c.out.clear();
    assert!(c.finished());
    // A command a session refuses.
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zIDSESSION\0zCONTSCAN /a\0");
    assert!(c.closing && f.jobs.is_empty());
}

#[test]
fn fildes_takes_the_next_descriptor_on_unix_only() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zFILDES\0");
    assert!(f.jobs.is_empty());
    c.received(b"\0", VecDeque::from([fd()]));
    c.advance(&mut f);
    assert!(matches!(f.jobs[0].work, Work::Fd(_)));
    // In a session, with the reads cut anywhere: each FILDES takes its descriptor and drops its carrier.
    let (mut c, mut f) = (conn(true), Fake::default());
    c.received(b"zIDSESSION\0zFILDES\0\0", VecDeque::from([fd()]));
    c.received(b"zFILDES\0", VecDeque::new());
    c.received(b"\0", VecDeque::from([fd()]));
    c.received(b"zPING\0zEND\0", VecDeque::new());
    c.advance(&mut f);
    assert_eq!(f.jobs.len(), 2);
    assert_eq!((f.jobs[0].seq, f.jobs[1].seq), (Some(1), Some(2)));
    assert_eq!(c.out, b"3: PONG\0");
    let (mut c, mut f) = (conn(false), Fake::default());
    feed(&mut c, &mut f, b"zFILDES\0");
    assert!(c.closing && f.jobs.is_empty());
}

#[test]
fn reload_and_shutdown_signal_the_sensor() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"RELOAD\n");
    assert_eq!(c.out, b"RELOADING\n");
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zSHUTDOWN\0");
    assert_eq!(f.signals, [libc::SIGTERM]);
    assert!(c.closing && c.out.is_empty(), "clamd says nothing");
    // With the gate on, no client may stop the sensor.
    let s = ClamdSettings {
        shutdown_allowed: false,
        ..ClamdSettings::default()
    };
    let mut c = Conn::new(
        ConnKey {
            slot: 0,
            generation: 1,
        },
        Client::default(),
        true,
        &s,
        std::env::temp_dir(),
    );
    let mut f = Fake::default();
    feed(&mut c, &mut f, b"nQUIT\n");
    assert!(f.signals.is_empty());
    assert!(c.closing && c.out.starts_with(b"SHUTDOWN refused"));
}

#[test]
fn timeouts_say_so_only_while_reading() {
    let (mut c, mut f) = (conn(true), Fake::default());
    feed(&mut c, &mut f, b"zSCA");
    assert_eq!(c.waiting(), Waiting::Data);
    c.timed_out();
    assert_eq!(c.out, b"COMMAND READ TIMED OUT\n");
    let (mut c, _) = (conn(true), Fake::default());
    assert_eq!(c.waiting(), Waiting::FirstCommand);
    c.timed_out();
    assert_eq!(c.out, b"COMMAND READ TIMED OUT\n");
}
