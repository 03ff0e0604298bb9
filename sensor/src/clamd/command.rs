//! clamd's request grammar (`man clamd`, COMMANDS): a command is `zNAME[ ARG]\0`, `nNAME[ ARG]\n`, or
//! the old bare `NAME[ ARG]\n`; replies end with the request's delimiter (`\0` for `z`, `\n` otherwise).
//! `INSTREAM` and `FILDES` are followed by data on the same connection (chunks, a descriptor), which is
//! not this module's business.
//!
//! Owns: splitting a connection's bytes into requests, and the limit on a request's length. Never: I/O,
//! or deciding what a command may do where (sessions, sockets: `conn`).

/// The longest request taken, prefix and delimiter included: clamd 1.4.6 answers a path of 4097 bytes
/// (`zSCAN <path>\0`, 4104 bytes) and closes without a word on anything longer (tests/CLAMD.md §3).
pub const MAX_REQUEST: usize = 4104;

/// How a request was delimited; its reply ends the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delim {
    /// `z` prefix: ends at NUL, replies end with NUL.
    Nul,
    /// `n` prefix: ends at newline.
    Newline,
    /// No prefix: ends at newline (or the client's half-close), the old form.
    Bare,
}

impl Delim {
    pub fn byte(self) -> u8 {
        match self {
            Delim::Nul => 0,
            Delim::Newline | Delim::Bare => b'\n',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Ping,
    Version,
    VersionCommands,
    Reload,
    Shutdown,
    Scan,
    ContScan,
    MultiScan,
    AllMatchScan,
    InStream,
    Fildes,
    Stats,
    IdSession,
    End,
    DetStats,
    DetStatsClear,
    /// clamd's synonym of SHUTDOWN.
    Quit,
}

impl Name {
    /// Every command with its wire name, in the order clamd 1.4.6's VERSIONCOMMANDS lists them.
    pub const ALL: &'static [(&'static str, Name)] = &[
        ("SCAN", Name::Scan),
        ("QUIT", Name::Quit),
        ("RELOAD", Name::Reload),
        ("PING", Name::Ping),
        ("CONTSCAN", Name::ContScan),
        ("VERSIONCOMMANDS", Name::VersionCommands),
        ("VERSION", Name::Version),
        ("END", Name::End),
        ("SHUTDOWN", Name::Shutdown),
        ("MULTISCAN", Name::MultiScan),
        ("FILDES", Name::Fildes),
        ("STATS", Name::Stats),
        ("IDSESSION", Name::IdSession),
        ("INSTREAM", Name::InStream),
        ("DETSTATSCLEAR", Name::DetStatsClear),
        ("DETSTATS", Name::DetStats),
        ("ALLMATCHSCAN", Name::AllMatchScan),
    ];

    /// The commands whose argument is a path.
    const PATH_COMMANDS: &'static [Name] = &[
        Name::AllMatchScan,
        Name::ContScan,
        Name::MultiScan,
        Name::Scan,
    ];

    pub fn as_str(self) -> &'static str {
        Name::ALL
            .iter()
            .find(|(_, n)| *n == self)
            .map(|(s, _)| *s)
            .expect("every name is listed")
    }

    /// A line's command and argument, as clamd reads them: a command without argument is the whole
    /// line (`PING x` is unknown); a path command's name is followed by exactly one separator byte,
    /// whatever it is, and the rest is the path, verbatim (`SCANX/tmp/a` scans `/tmp/a`).
    fn split(line: &[u8]) -> (Option<Name>, Vec<u8>) {
        if let Some((_, n)) = Name::ALL.iter().find(|(s, _)| s.as_bytes() == line) {
            if !Name::PATH_COMMANDS.contains(n) {
                return (Some(*n), Vec::new());
            }
        }
        for n in Name::PATH_COMMANDS {
            let word = n.as_str().as_bytes();
            if line.len() > word.len() && line.starts_with(word) {
                return (Some(*n), line[word.len() + 1..].to_vec());
            }
        }
        (None, Vec::new())
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub delim: Delim,
    /// `None`: a word clamd does not know (the reply is `UNKNOWN COMMAND`).
    pub name: Option<Name>,
    /// The bytes after the first space, if any.
    pub arg: Vec<u8>,
}

/// What the bytes at the start of a buffer are.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request yet.
    More,
    /// A request and the bytes it took (delimiter included).
    Request(Request, usize),
    /// A request longer than [`MAX_REQUEST`] without its delimiter.
    TooLong,
}

/// The first request in `buf`. `eof`: the client will send nothing more, so a bare request ends at the
/// end of the buffer.
pub fn parse(buf: &[u8], eof: bool) -> Parsed {
    let Some(&first) = buf.first() else {
        return Parsed::More;
    };
    let (delim, body_at) = match first {
        b'z' => (Delim::Nul, 1),
        b'n' => (Delim::Newline, 1),
        _ => (Delim::Bare, 0),
    };
    let end = buf[body_at..]
        .iter()
        .position(|&b| b == delim.byte())
        .map(|i| body_at + i);
    let (line, used) = match end {
        Some(e) => (&buf[body_at..e], e + 1),
        None if buf.len() > MAX_REQUEST => return Parsed::TooLong,
        None if eof && delim == Delim::Bare => (buf, buf.len()),
        None => return Parsed::More,
    };
    if used > MAX_REQUEST {
        return Parsed::TooLong;
    }
    // A bare request may end with CRLF (telnet).
    let line = match (delim, line.last()) {
        (Delim::Bare | Delim::Newline, Some(b'\r')) => &line[..line.len() - 1],
        _ => line,
    };
    let (name, arg) = Name::split(line);
    Parsed::Request(Request { delim, name, arg }, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(buf: &[u8]) -> (Request, usize) {
        match parse(buf, false) {
            Parsed::Request(r, n) => (r, n),
            other => panic!("{buf:?}: {other:?}"),
        }
    }

    #[test]
    fn the_three_forms() {
        let (r, n) = req(b"zPING\0rest");
        assert_eq!((r.delim, r.name, n), (Delim::Nul, Some(Name::Ping), 6));
        let (r, n) = req(b"nSCAN /tmp/a b\n");
        assert_eq!((r.delim, r.name, n), (Delim::Newline, Some(Name::Scan), 15));
        assert_eq!(r.arg, b"/tmp/a b");
        let (r, _) = req(b"PING\r\n");
        assert_eq!((r.delim, r.name), (Delim::Bare, Some(Name::Ping)));
        let (r, _) = req(b"zSCAN /a\nb\0");
        assert_eq!(r.arg, b"/a\nb", "a z request's argument may hold a newline");
        let (r, _) = req(b"zFOO\0");
        assert_eq!(r.name, None);
        let (r, _) = req(b"zping\0");
        assert_eq!(r.name, None, "names are upper case");
        let (r, _) = req(b"zPING x\0");
        assert_eq!(r.name, None, "a command without argument takes none");
        let (r, _) = req(b"zSCANX/tmp/a\0");
        assert_eq!(
            (r.name, r.arg.as_slice()),
            (Some(Name::Scan), &b"/tmp/a"[..])
        );
        let (r, _) = req(b"zSCAN  /a\0");
        assert_eq!(r.arg, b" /a", "one separator byte, the rest verbatim");
        let (r, _) = req(b"zSCAN\0");
        assert_eq!(r.name, None, "a path command needs its separator");
        let (r, _) = req(b"zSCAN \0");
        assert_eq!((r.name, r.arg.len()), (Some(Name::Scan), 0));
        let (r, _) = req(b"zCONTSCAN /a\0");
        assert_eq!(r.name, Some(Name::ContScan));
    }

    #[test]
    fn partial_long_and_closed() {
        assert_eq!(parse(b"", false), Parsed::More);
        assert_eq!(parse(b"zPIN", false), Parsed::More);
        assert_eq!(
            parse(b"zPIN", true),
            Parsed::More,
            "a z request needs its NUL"
        );
        assert!(matches!(parse(b"PING", true), Parsed::Request(_, 4)));
        let mut long = b"zSCAN /".to_vec();
        long.resize(MAX_REQUEST + 1, b'a');
        assert_eq!(parse(&long, false), Parsed::TooLong);
        long.push(0);
        assert_eq!(parse(&long, false), Parsed::TooLong);
        let mut fits = b"zSCAN /".to_vec();
        fits.resize(MAX_REQUEST - 1, b'a');
        fits.push(0);
        assert!(matches!(parse(&fits, false), Parsed::Request(_, 4104)));
    }

    proptest! {
        /// Any bytes: never a panic, never more used than given, a request never longer than the limit.
        #[test]
        fn any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..10_000), eof: bool) {
            match parse(&buf, eof) {
                Parsed::Request(r, used) => {
                    prop_assert!(used >= 1 && used <= buf.len() && used <= MAX_REQUEST);
                    prop_assert!(r.arg.len() < used);
                }
                Parsed::More => prop_assert!(buf.len() <= MAX_REQUEST),
                Parsed::TooLong => prop_assert!(buf.len() > MAX_REQUEST),
            }
        }
    }
}
