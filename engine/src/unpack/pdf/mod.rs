//! PDF (ISO 32000-1): every stream, decoded, and the objects inside object streams; embedded files are
//! named after their file specifications.
//!
//! Objects are found the way tolerant readers recover damaged files, not through the cross-reference
//! table: by scanning for `num gen obj` headers (7.3.10), then reading the object's value and, for a
//! dictionary followed by `stream`, the stream's bytes (7.3.8): `/Length` bytes when the `endstream`
//! keyword follows them, else up to the next `endstream`. Object streams (`/Type /ObjStm`, 7.5.7: `/N`
//! pairs of object number and offset, the objects from `/First` on) are decoded and their objects
//! parsed too. An embedded file's name is the `/UF` or `/F` of the file specification whose `/EF`
//! points at it (7.11.3-4). A document with `/Encrypt` in its trailer (or cross-reference stream) is
//! opened with the empty user password where that works ([`crypt`]), and its streams decrypted;
//! otherwise it is reported encrypted and only its streams that stay in clear are handed out:
//! cross-reference streams, and streams under an `/Identity` crypt filter (`/StmF`, or `/EFF` for
//! embedded files, 7.6.5). (Strings are not decrypted: an encrypted document's embedded files are named
//! by their object.)
//!
//! A hand parser rather than `lopdf` or `pdf`: those crates start from the cross-reference table and
//! refuse (or repair only partly) files with a broken one, which is what malicious PDFs are; what is
//! needed here is every stream, found as readers find them, under a byte budget.
//!
//! Owns: finding objects and streams, names, and the encrypted verdict. Never: follows references more
//! than a few hops, parses a region twice (stream data is skipped, the `endstream` positions are found
//! once), or decodes past the sink's room (see [`filters`]).

mod crypt;
mod filters;
mod object;

use super::{Flow, Limit, Sink, UnpackError};
use memchr::memmem;
use object::{Dict, Obj, Parser};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

/// clamscan's name for an encrypted PDF (`--alert-encrypted-doc`).
pub const ENCRYPTED: &str = "Heuristics.Encrypted.PDF";

/// How far after a `trailer` keyword its dictionary is looked for.
const TRAILER_WINDOW: usize = 64 << 10;
/// References followed from one value before giving up (a chain of references to references).
const MAX_HOPS: usize = 8;

/// One top-level object.
struct Record {
    num: u32,
    gen: u16,
    value: Obj,
    /// The stream's raw bytes in the file, for a stream object.
    stream: Option<Range<usize>>,
}

struct Pdf<'a> {
    data: &'a [u8],
    records: Vec<Record>,
    /// Object number to its value: top-level objects (the last definition wins, as in an updated file),
    /// then objects from object streams where no top-level one has the number.
    index: HashMap<u32, Obj>,
    /// The document's decryption when it is encrypted and opens with the empty password.
    crypt: Option<crypt::Decryptor>,
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let records = find_objects(data, sink);
    if records.is_empty() {
        return Err(UnpackError::corrupt("PDF", "no objects"));
    }
    let mut pdf = Pdf {
        data,
        index: records.iter().map(|r| (r.num, r.value.clone())).collect(),
        records,
        crypt: None,
    };
    let clear = match pdf.encryption() {
        Some(Encryption::Open(d)) => {
            pdf.crypt = Some(d);
            Clear::All
        }
        Some(Encryption::Locked(clear)) => {
            if sink.encrypted(ENCRYPTED, true) == Flow::Stop {
                return Ok(());
            }
            clear
        }
        None => Clear::All,
    };
    if pdf.object_streams(clear, sink) == Flow::Stop {
        return Ok(());
    }
    let names = pdf.embedded_names();
    for r in &pdf.records {
        if sink.stopped() {
            return Ok(());
        }
        let (Some(range), Obj::Dict(d)) = (&r.stream, &r.value) else {
            continue;
        };
        if d.name_is(b"Type", b"ObjStm") || !clear.covers(d) {
            continue;
        }
        let name = names
            .get(&r.num)
            .cloned()
            .unwrap_or_else(|| format!("obj {} {}", r.num, r.gen));
        let Some(raw) = pdf.plain(r, d, &data[range.clone()]) else {
            continue;
        };
        if pdf.emit_stream(&name, d, &raw, sink) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// An encrypted document: opened with the empty password, or not (then only some streams are clear).
enum Encryption {
    Open(crypt::Decryptor),
    Locked(Clear),
}

/// Which streams of an encrypted document are in clear.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clear {
    All,
    /// Cross-reference streams, plus embedded files when `/EFF` is `/Identity`.
    XrefOnly {
        embedded: bool,
    },
}

impl Clear {
    fn covers(self, d: &Dict) -> bool {
        match self {
            Clear::All => true,
            Clear::XrefOnly { embedded } => {
                d.name_is(b"Type", b"XRef") || (embedded && d.name_is(b"Type", b"EmbeddedFile"))
            }
        }
    }
}

impl<'a> Pdf<'a> {
    /// `value`, with references followed.
    fn resolve<'o>(&'o self, mut value: &'o Obj) -> &'o Obj {
        for _ in 0..MAX_HOPS {
            match value {
                Obj::Ref(n, _) => match self.index.get(n) {
                    Some(v) => value = v,
                    None => return &Obj::Null,
                },
                _ => return value,
            }
        }
        &Obj::Null
    }

    /// A stream's bytes as its filters expect them: decrypted when the document was opened (not
    /// cross-reference streams, which are never encrypted); `None` when they cannot be.
    fn plain<'r>(&self, r: &Record, d: &Dict, raw: &'r [u8]) -> Option<Cow<'r, [u8]>> {
        let Some(c) = &self.crypt else {
            return Some(Cow::Borrowed(raw));
        };
        if d.name_is(b"Type", b"XRef") {
            return Some(Cow::Borrowed(raw));
        }
        let method = if d.name_is(b"Type", b"EmbeddedFile") {
            c.embedded
        } else {
            c.streams
        };
        c.decrypt(method, r.num, r.gen, raw).map(Cow::Owned)
    }

    /// How the document is encrypted; `None` if it is not.
    fn encryption(&self) -> Option<Encryption> {
        // Each trailer's dictionary is read up to the next `trailer` at most, so that many unterminated
        // ones cannot each be read to the end of the window.
        let starts: Vec<usize> = memmem::find_iter(self.data, b"trailer").collect();
        let trailers = starts.iter().enumerate().filter_map(|(i, &at)| {
            let next = starts.get(i + 1).copied().unwrap_or(self.data.len());
            let end = (at + TRAILER_WINDOW).min(next);
            match Parser::new(&self.data[..end], at + 7).value(0) {
                Some(Obj::Dict(d)) => Some(d),
                _ => None,
            }
        });
        let xref_streams = self.records.iter().filter_map(|r| match &r.value {
            Obj::Dict(d) if r.stream.is_some() && d.name_is(b"Type", b"XRef") => Some(d.clone()),
            _ => None,
        });
        let (encrypt, id) = trailers
            .chain(xref_streams)
            .find_map(|d| Some((d.get(b"Encrypt").cloned()?, d.get(b"ID").cloned())))?;
        let Some(e) = self.resolve(&encrypt).as_dict() else {
            return Some(Encryption::Locked(Clear::XrefOnly { embedded: false }));
        };
        let id0 = match id.as_ref().map(|i| self.resolve(i)) {
            Some(Obj::Array(a)) => match a.first().map(|v| self.resolve(v)) {
                Some(Obj::Str(s)) => s.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if let Some(d) = crypt::open(e, &id0) {
            return Some(Encryption::Open(d));
        }
        Some(Encryption::Locked(if e.name_is(b"StmF", b"Identity") {
            Clear::All
        } else {
            Clear::XrefOnly {
                embedded: e.name_is(b"EFF", b"Identity"),
            }
        }))
    }

    /// Decodes each object stream, hands it out, and adds its objects to the index.
    fn object_streams(&mut self, clear: Clear, sink: &mut dyn Sink) -> Flow {
        let mut found: Vec<(u32, Obj)> = Vec::new();
        for r in &self.records {
            let (Some(range), Obj::Dict(d)) = (&r.stream, &r.value) else {
                continue;
            };
            if !d.name_is(b"Type", b"ObjStm") || !clear.covers(d) {
                continue;
            }
            if sink.stopped() {
                return Flow::Stop;
            }
            let name = format!("obj {} {}", r.num, r.gen);
            let Some(raw) = self.plain(r, d, &self.data[range.clone()]) else {
                continue;
            };
            let Some(decoded) = self.decode(&name, d, &raw, sink) else {
                continue;
            };
            if sink.member(&name, &decoded) == Flow::Stop {
                return Flow::Stop;
            }
            let first = self.resolve(d.get(b"First").unwrap_or(&Obj::Null)).as_int();
            let count = self.resolve(d.get(b"N").unwrap_or(&Obj::Null)).as_int();
            found.extend(inner_objects(&decoded, first, count));
        }
        for (num, value) in found {
            self.index.entry(num).or_insert(value);
        }
        Flow::Continue
    }

    /// A stream's bytes after its filters, handed to the sink (or the limit it hit).
    fn emit_stream(&self, name: &str, d: &Dict, raw: &[u8], sink: &mut dyn Sink) -> Flow {
        match self.decode(name, d, raw, sink) {
            Some(data) if !data.is_empty() => sink.member(name, &data),
            Some(_) => Flow::Continue,
            None => {
                if sink.stopped() {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
        }
    }

    /// A stream's bytes after its filters; `None` when a limit stopped the decoding (reported to the
    /// sink).
    fn decode<'r>(
        &self,
        name: &str,
        d: &Dict,
        raw: &'r [u8],
        sink: &mut dyn Sink,
    ) -> Option<Cow<'r, [u8]>> {
        let filters = self.filters(d);
        let room = sink.room();
        if filters.is_empty() {
            if raw.len() as u64 > room {
                sink.too_large(name, Limit::MaxFileSize);
                return None;
            }
            return Some(Cow::Borrowed(raw));
        }
        let out = filters::decode(raw, &filters, room);
        if out.too_many {
            sink.not_unpacked("PDF stream with more filters than are applied");
        }
        if let Some(limit) = out.limit {
            sink.too_large(name, limit);
            return None;
        }
        Some(Cow::Owned(out.data))
    }

    /// A stream's filters with their parameters: `/Filter` (a name or an array of names) and
    /// `/DecodeParms` (a dictionary, or an array parallel to the filters).
    fn filters<'s>(&'s self, d: &'s Dict) -> Vec<(Vec<u8>, Option<&'s Dict>)> {
        let filter = self.resolve(d.get(b"Filter").unwrap_or(&Obj::Null));
        let parms = self.resolve(d.get(b"DecodeParms").unwrap_or(&Obj::Null));
        let names: Vec<&Obj> = match filter {
            Obj::Array(a) => a.iter().map(|f| self.resolve(f)).collect(),
            Obj::Null => Vec::new(),
            other => vec![other],
        };
        names
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let name = match f {
                    Obj::Name(n) => n.clone(),
                    _ => b"(not a name)".to_vec(),
                };
                let p = match parms {
                    Obj::Array(a) => a.get(i).map(|p| self.resolve(p)),
                    p if i == 0 => Some(p),
                    _ => None,
                };
                (name, p.and_then(Obj::as_dict))
            })
            .collect()
    }

    /// Embedded files' names by the object number of their stream: from every dictionary with an
    /// `/EF` entry (a file specification), its `/UF`, else `/F`.
    fn embedded_names(&self) -> HashMap<u32, String> {
        let mut names = HashMap::new();
        let mut stack: Vec<&Obj> = self.index.values().collect();
        while let Some(v) = stack.pop() {
            match v {
                Obj::Array(a) => stack.extend(a.iter()),
                Obj::Dict(d) => {
                    if let Some(Obj::Dict(ef)) = d.get(b"EF").map(|e| self.resolve(e)) {
                        let name = [&b"UF"[..], b"F"].iter().find_map(|k| {
                            match d.get(k).map(|v| self.resolve(v)) {
                                Some(Obj::Str(s)) if !s.is_empty() => Some(text(s)),
                                _ => None,
                            }
                        });
                        for (_, target) in &ef.0 {
                            if let (Obj::Ref(n, _), Some(name)) = (target, &name) {
                                names.entry(*n).or_insert_with(|| name.clone());
                            }
                        }
                    }
                    stack.extend(d.0.iter().map(|(_, v)| v));
                }
                _ => {}
            }
        }
        names
    }
}

/// A PDF text string: UTF-16BE after a byte order mark, else PDFDocEncoding (read as Latin-1).
fn text(s: &[u8]) -> String {
    match s.strip_prefix(&[0xFE, 0xFF]) {
        Some(u) => {
            let units: Vec<u16> = u
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => s.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The objects of a decoded object stream: `count` pairs of object number and offset before `first`.
fn inner_objects(decoded: &[u8], first: Option<i64>, count: Option<i64>) -> Vec<(u32, Obj)> {
    let (Some(first), Some(count)) = (
        first.and_then(|f| usize::try_from(f).ok()),
        count.and_then(|c| usize::try_from(c).ok()),
    ) else {
        return Vec::new();
    };
    let header = &decoded[..first.min(decoded.len())];
    let mut p = Parser::new(header, 0);
    let mut pairs: Vec<(u32, usize)> = Vec::new();
    while pairs.len() < count {
        let (Some(Obj::Int(n)), Some(Obj::Int(off))) = (p.value(0), p.value(0)) else {
            break;
        };
        let (Ok(n), Ok(off)) = (u32::try_from(n), usize::try_from(off)) else {
            break;
        };
        pairs.push((n, off));
    }
    // Each object is read from its offset to the next larger one; objects sharing an offset are read
    // once (a crafted header could otherwise make each read the whole stream).
    pairs.sort_by_key(|&(_, off)| off);
    pairs.dedup_by_key(|&mut (_, off)| off);
    let mut objects = Vec::with_capacity(pairs.len());
    for (i, &(num, off)) in pairs.iter().enumerate() {
        let start = first.saturating_add(off);
        let end = pairs
            .get(i + 1)
            .map_or(decoded.len(), |&(_, o)| first.saturating_add(o))
            .min(decoded.len());
        if start >= end {
            continue;
        }
        if let Some(v) = Parser::new(&decoded[..end], start).value(0) {
            objects.push((num, v));
        }
    }
    objects
}

/// Every `num gen obj` in the file, in order, with its value and stream; stream data is skipped.
fn find_objects(data: &[u8], sink: &dyn Sink) -> Vec<Record> {
    let headers: Vec<(usize, usize, u32, u16)> = memmem::find_iter(data, b"obj")
        .filter_map(|at| header_at(data, at))
        .collect();
    let endstreams: Vec<usize> = memmem::find_iter(data, b"endstream").collect();
    let mut lengths: HashMap<u32, i64> = HashMap::new();
    let mut records = Vec::new();
    let mut consumed = 0usize;
    for (i, &(start, body, num, gen)) in headers.iter().enumerate() {
        if start < consumed {
            continue;
        }
        if records.len() % 256 == 0 && sink.stopped() {
            break;
        }
        // The value is read no further than the next header: an unterminated string or dictionary
        // cannot make each object a scan to the end of the file.
        let limit = headers.get(i + 1).map_or(data.len(), |h| h.0);
        let mut p = Parser::new(&data[..limit], body);
        let value = p.value(0).unwrap_or(Obj::Null);
        let mut stream = None;
        if let Obj::Dict(d) = &value {
            let mut q = Parser::new(data, p.pos);
            q.skip_white();
            if data[q.pos..].starts_with(b"stream") {
                let (range, end) = stream_extent(data, d, q.pos + 6, &endstreams, &lengths);
                consumed = end;
                stream = Some(range);
            }
        }
        if let Obj::Int(n) = value {
            lengths.insert(num, n);
        }
        records.push(Record {
            num,
            gen,
            value,
            stream,
        });
    }
    records
}

/// The `num gen obj` header whose `obj` is at `at`: (header start, value start, num, gen).
fn header_at(data: &[u8], at: usize) -> Option<(usize, usize, u32, u16)> {
    let after = at + 3;
    if data
        .get(after)
        .is_some_and(|&b| !object::is_white(b) && !object::is_delimiter(b))
    {
        return None;
    }
    let mut i = at;
    let white = |i: &mut usize| {
        let end = *i;
        while *i > 0 && object::is_white(data[*i - 1]) {
            *i -= 1;
        }
        *i < end
    };
    let digits = |i: &mut usize| {
        let end = *i;
        while *i > 0 && data[*i - 1].is_ascii_digit() && end - *i < 10 {
            *i -= 1;
        }
        (*i < end).then(|| &data[*i..end])
    };
    if !white(&mut i) {
        return None;
    }
    let gen = digits(&mut i)?;
    if !white(&mut i) {
        return None;
    }
    let num = digits(&mut i)?;
    if i > 0 && !object::is_white(data[i - 1]) && !object::is_delimiter(data[i - 1]) {
        return None;
    }
    let num = object::parse_int(num).and_then(|n| u32::try_from(n).ok())?;
    let gen = object::parse_int(gen).and_then(|g| u16::try_from(g).ok())?;
    Some((i, after, num, gen))
}

/// A stream's raw bytes, whose `stream` keyword ends at `kw_end`, and where scanning resumes after it.
fn stream_extent(
    data: &[u8],
    d: &Dict,
    kw_end: usize,
    endstreams: &[usize],
    lengths: &HashMap<u32, i64>,
) -> (Range<usize>, usize) {
    let mut start = kw_end;
    while matches!(data.get(start), Some(b' ' | b'\t')) {
        start += 1;
    }
    if data.get(start) == Some(&b'\r') {
        start += 1;
    }
    if data.get(start) == Some(&b'\n') {
        start += 1;
    }
    let length = match d.get(b"Length") {
        Some(Obj::Int(n)) => Some(*n),
        Some(Obj::Ref(n, _)) => lengths.get(n).copied(),
        _ => None,
    };
    if let Some(end) = length
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= data.len())
    {
        let mut p = Parser::new(data, end);
        p.skip_white();
        if data[p.pos..].starts_with(b"endstream") {
            return (start..end, p.pos + 9);
        }
    }
    let next = endstreams.partition_point(|&e| e < start);
    match endstreams.get(next) {
        Some(&e) => {
            let mut end = e;
            if end > start && data[end - 1] == b'\n' {
                end -= 1;
            }
            if end > start && data[end - 1] == b'\r' {
                end -= 1;
            }
            (start..end, e + 9)
        }
        None => (start.min(data.len())..data.len(), data.len()),
    }
}
