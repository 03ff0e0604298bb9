//! Mach-O (target 9) signatures with entry-point and section offsets (`EP±n`, `Sx+n`, `SEx`,
//! `SL+n`, with and without a shift) and TDB `EntryPoint`/`NumberOfSections`, on generated thin Mach-O files
//! (PowerPC, whose thread state gives clamscan an entry point; x86-64, whose does not; broken ones whose
//! entry point maps nowhere), give clamscan's verdicts and names with and without `-z`
//! (tests/ORACLE.md §13h); likewise `VI` (PE version information) subsignatures on generated PEs with a
//! version resource (§13i).

use sensor_tests::gen::Rng;
use sensor_tests::oracle;
use sensor_tests::pe::Pe;

const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;
const LC_UNIXTHREAD: u32 = 0x5;

/// A thin Mach-O of `len` filler bytes: 32-bit big-endian PowerPC (`ppc`) or 64-bit little-endian x86-64,
/// one segment holding `sections` (`(addr, size, offset)`) and a thread whose program counter is `pc`.
fn macho(rng: &mut Rng, ppc: bool, sections: &[(u32, u32, u32)], pc: u32, len: usize) -> Vec<u8> {
    let (be, wide) = (ppc, !ppc);
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let w64 = |v: &mut Vec<u8>, x: u64| {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let mut seg = Vec::new();
    seg.extend_from_slice(b"__TEXT\0\0\0\0\0\0\0\0\0\0");
    for x in [0x1000u64, 0x8000, 0, len as u64] {
        if wide {
            w64(&mut seg, x)
        } else {
            w32(&mut seg, x as u32)
        }
    }
    for x in [7, 5, sections.len() as u32, 0] {
        w32(&mut seg, x);
    }
    for &(addr, size, offset) in sections {
        seg.extend_from_slice(b"__text\0\0\0\0\0\0\0\0\0\0__TEXT\0\0\0\0\0\0\0\0\0\0");
        if wide {
            w64(&mut seg, u64::from(addr));
            w64(&mut seg, u64::from(size));
        } else {
            w32(&mut seg, addr);
            w32(&mut seg, size);
        }
        w32(&mut seg, offset);
        for _ in 0..if wide { 7 } else { 6 } {
            w32(&mut seg, 0);
        }
    }
    let mut cmds = Vec::new();
    w32(&mut cmds, if wide { LC_SEGMENT_64 } else { LC_SEGMENT });
    w32(&mut cmds, 8 + seg.len() as u32);
    cmds.extend_from_slice(&seg);
    // PowerPC: flavor 1, 40 words, srr0 first. x86-64: flavor 4, 42 words, rip at word 32.
    let (flavor, count, state) = if ppc { (1, 40, 160) } else { (4, 42, 168) };
    w32(&mut cmds, LC_UNIXTHREAD);
    w32(&mut cmds, 16 + state);
    w32(&mut cmds, flavor);
    w32(&mut cmds, count);
    let mut st = vec![0u8; state as usize];
    if ppc {
        st[..4].copy_from_slice(&pc.to_be_bytes());
    } else {
        st[128..136].copy_from_slice(&u64::from(pc).to_le_bytes());
    }
    cmds.extend_from_slice(&st);
    let mut d = Vec::new();
    w32(&mut d, if wide { 0xfeed_facf } else { 0xfeed_face });
    for x in [
        if ppc { 18 } else { 0x0100_0007 },
        3,
        2,
        2,
        cmds.len() as u32,
        0,
    ] {
        w32(&mut d, x);
    }
    if wide {
        w32(&mut d, 0);
    }
    d.extend_from_slice(&cmds);
    let head = d.len();
    d.extend(rng.filler(len - head));
    d
}

/// A universal Mach-O of `archs`, each at a 4 KiB boundary.
fn universal(archs: &[&Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0xCA, 0xFE, 0xBA, 0xBE];
    out.extend_from_slice(&(archs.len() as u32).to_be_bytes());
    let mut at = 0x1000u32;
    let mut body = Vec::new();
    for a in archs {
        // fat_arch: cputype (PowerPC), cpusubtype, offset, size, align (2^12).
        for v in [18, 0, at, a.len() as u32, 12] {
            out.extend_from_slice(&u32::to_be_bytes(v));
        }
        body.push((at, *a));
        at += (a.len() as u32).div_ceil(0x1000) * 0x1000;
    }
    for (offset, a) in body {
        out.resize(offset as usize, 0);
        out.extend_from_slice(a);
    }
    out
}

#[test]
fn macho_offsets_match_clamscan() {
    let test = "macho_offsets_match_clamscan";
    let Some(clamscan) = oracle::require_tool(test, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let mut rng = Rng::new(1309);
    let (mut ndb, mut ldb) = (String::new(), String::new());
    let mut id = 0;
    let mut thin = Vec::new();
    for copy in 0..24 {
        let len = rng.range(0x1400, 0x3000);
        // Two to four sections at random file offsets (unaligned), addresses from 0x2000 on.
        let n = rng.range(2, 5);
        let mut sections = Vec::new();
        let mut addr = 0x2000u32;
        for _ in 0..n {
            let size = rng.range(0x40, 0x300) as u32;
            let offset = rng.range(0x300, len - 0x400) as u32;
            sections.push((addr, size, offset));
            addr += size + rng.range(0, 0x100) as u32;
        }
        let ppc = copy % 3 != 2;
        let s = *rng.pick(&sections);
        let pc = match copy % 6 {
            // Entry point in a gap between sections or past them: a broken file to clamscan.
            5 => addr + 0x1000,
            _ => s.0 + rng.below(u64::from(s.1)) as u32,
        };
        let data = macho(&mut rng, ppc, &sections, pc, len);
        let ep = if !ppc { 0 } else { u64::from(s.2 + (pc - s.0)) };
        let last = sections[n - 1];
        let name = format!("m{copy}");
        let mut sig = |target: u32, off: String, at: u64| {
            id += 1;
            let at = at as usize;
            if at + 12 > data.len() {
                return;
            }
            let hex = hex::encode(&data[at..at + 12]);
            ndb.push_str(&format!("{name}.T{target}.{id}:{target}:{off}:{hex}\n"));
        };
        // Every probe lies past the headers (in filler unique to the file): with x86-64 the entry point is 0.
        let k = if ppc {
            rng.range(0, 40)
        } else {
            rng.range(0x300, 0x340)
        } as u64;
        sig(9, format!("EP+{k}"), ep + k);
        sig(9, format!("EP+{}", k + 1), ep + k);
        sig(9, format!("EP+0,{k}"), ep + k);
        if ep >= 8 {
            sig(9, "EP-8".into(), ep - 8);
        }
        let i = rng.below(n as u64) as usize;
        sig(9, format!("S{i}+{k}"), u64::from(sections[i].2) + k);
        sig(
            9,
            format!("SE{i}"),
            u64::from(sections[i].2 + sections[i].1 / 2),
        );
        sig(
            9,
            format!("SE{i}"),
            u64::from(sections[i].2 + sections[i].1 + 4),
        );
        sig(
            9,
            format!("SE{i},8"),
            u64::from(sections[i].2 + sections[i].1 + 4),
        );
        sig(9, format!("SL+{k}"), u64::from(last.2) + k);
        sig(9, format!("S{n}+0"), u64::from(last.2));
        sig(9, "EOF-64".into(), data.len() as u64 - 64);
        sig(0, "EOF-80".into(), data.len() as u64 - 80);
        sig(9, format!("{}", len - 200), len as u64 - 200);
        id += 1;
        ldb.push_str(&format!(
            "{name}.L{id};Engine:51-255,Target:9,EntryPoint:{ep}-{},NumberOfSections:{n}-{n};0;0:{}\n",
            ep + rng.below(2),
            hex::encode(&data[..8])
        ));
        id += 1;
        ldb.push_str(&format!(
            "{name}.L{id};Engine:51-255,Target:9;0&1;EP+0:{};S{i}+0:{}\n",
            hex::encode(&data[ep as usize..ep as usize + 8]),
            hex::encode(&data[sections[i].2 as usize..sections[i].2 as usize + 8])
        ));
        std::fs::write(files.join(&name), &data).unwrap();
        thin.push(data);
    }
    // Universal files of two of them: clamscan scans each architecture as a file of its own.
    for k in 0..6 {
        let (a, b) = (&thin[2 * k], &thin[2 * k + 1]);
        std::fs::write(files.join(format!("fat{k}")), universal(&[a, b])).unwrap();
    }
    std::fs::write(db.join("gen.ndb"), ndb).unwrap();
    std::fs::write(db.join("gen.ldb"), ldb).unwrap();
    for allmatch in [true, false] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        let found = theirs.values().filter(|v| v.is_found()).count();
        assert!(
            found >= 18,
            "only {found} files found by clamscan: the test lost its power"
        );
        assert_eq!(theirs, ours, "allmatch {allmatch}");
        let fat = theirs
            .iter()
            .filter(|(p, v)| p.contains("/fat") && v.is_found())
            .count();
        assert!(fat >= 3, "clamscan found only {fat} of 6 universal files");
    }
}

fn utf16z(s: &[u8]) -> Vec<u8> {
    s.iter().chain(&[0]).flat_map(|&c| [c, 0]).collect()
}

fn pad4(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(4), 0);
}

/// One version structure (length, value length, type, key, value, children), 4-byte aligned parts.
fn node(key: &[u8], value: &[u8], value_len: u16, children: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&value_len.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend(utf16z(key));
    pad4(&mut b);
    b.extend_from_slice(value);
    if !children.is_empty() {
        pad4(&mut b);
        b.extend_from_slice(children);
    }
    let len = b.len() as u16;
    b[..2].copy_from_slice(&len.to_le_bytes());
    b
}

/// A PE32 whose one section (RVA 0x1000, file offset 0x200) starts with a resource tree holding one
/// `RT_VERSION` resource with `strings`; returns the file and the file offset of each string's key.
fn pe_with_version(seed: u64, strings: &[(Vec<u8>, Vec<u8>)], len: usize) -> (Vec<u8>, Vec<usize>) {
    let mut d = Pe::new(len).build(seed);
    let mut table = Vec::new();
    for (k, v) in strings {
        let value = utf16z(v);
        table.extend(node(k, &value, (value.len() / 2) as u16, &[]));
        pad4(&mut table);
    }
    let mut st = node(b"040904b0", &[], 0, &table);
    pad4(&mut st);
    let mut sfi = node(b"StringFileInfo", &[], 0, &st);
    pad4(&mut sfi);
    let mut fixed = vec![0u8; 52];
    fixed[..4].copy_from_slice(&0xFEEF_04BDu32.to_le_bytes());
    let block = node(b"VS_VERSION_INFO", &fixed, 52, &sfi);
    // Root (type 16) -> name 1 -> language 0x409 -> data entry at 0x48, the block at 0x58.
    let mut t = Vec::new();
    for (id, target) in [(16u32, 0x8000_0018u32), (1, 0x8000_0030), (0x409, 0x48)] {
        t.extend_from_slice(&[0; 12]);
        t.extend_from_slice(&[0, 0, 1, 0]);
        t.extend_from_slice(&id.to_le_bytes());
        t.extend_from_slice(&target.to_le_bytes());
    }
    t.extend_from_slice(&0x1058u32.to_le_bytes());
    t.extend_from_slice(&(block.len() as u32).to_le_bytes());
    t.extend_from_slice(&[0; 8]);
    let block_at = t.len();
    t.extend_from_slice(&block);
    d[0x200..0x200 + t.len()].copy_from_slice(&t);
    let dd = 0x58 + 96 + 16;
    d[dd..dd + 4].copy_from_slice(&0x1000u32.to_le_bytes());
    d[dd + 4..dd + 8].copy_from_slice(&(t.len() as u32).to_le_bytes());
    // Key offsets: each string structure's key, 6 bytes in, found by walking the lengths.
    let mut keys = Vec::new();
    let strings_at = 0x200 + block_at + block.len() - table.len();
    let mut at = strings_at;
    for _ in strings {
        keys.push(at + 6);
        let len = u16::from_le_bytes([d[at], d[at + 1]]) as usize;
        at = (at + len).next_multiple_of(4);
    }
    (d, keys)
}

#[test]
fn version_info_matches_clamscan() {
    let test = "version_info_matches_clamscan";
    let Some(clamscan) = oracle::require_tool(test, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let mut rng = Rng::new(1310);
    let (mut ndb, mut ldb) = (String::new(), String::new());
    let mut id = 0;
    for copy in 0..16 {
        let n = rng.range(1, 5);
        let strings: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
            .map(|_| {
                let k = rng.range(3, 16);
                let v = rng.range(0, 20);
                (rng.letters(k), rng.letters(v))
            })
            .collect();
        let (mut d, keys) = pe_with_version(1310 + copy, &strings, rng.range(0x1200, 0x2000));
        let name = format!("v{copy}");
        let i = rng.below(n as u64) as usize;
        let (k, v) = &strings[i];
        let key = utf16z(k);
        let value = utf16z(v);
        // The value's bytes, and the key's, also elsewhere in the file: only the key start counts for VI.
        let far = d.len() - 0x100;
        d[far..far + key.len()].copy_from_slice(&key);
        let at = keys[i];
        let mut sub = |ldb: &mut String, off: &str, bytes: &[u8]| {
            id += 1;
            if bytes.len() < 4 {
                return;
            }
            ldb.push_str(&format!(
                "{name}.V{id};Engine:51-255,Target:1;0;{off}:{}\n",
                hex::encode(bytes)
            ));
        };
        sub(&mut ldb, "VI", &d[at..at + key.len() + 8]);
        sub(&mut ldb, "VI", &key[..key.len() - 2]);
        sub(&mut ldb, "VI,6", &key[2..]);
        sub(&mut ldb, "VI", &value);
        sub(&mut ldb, "VI", &d[at - 6..at + 6]);
        sub(&mut ldb, "*", &d[at..at + key.len()]);
        id += 1;
        ldb.push_str(&format!(
            "{name}.V{id};Engine:51-255,Target:1;0&1;EP+0:{};VI:{}\n",
            hex::encode(&d[0x200..0x208]),
            hex::encode(&key)
        ));
        id += 1;
        ndb.push_str(&format!("{name}.N{id}:1:VI:{}\n", hex::encode(&key)));
        std::fs::write(files.join(&name), &d).unwrap();
        // The same bytes in a PE without version information: no VI match.
        let mut plain = Pe::new(d.len()).build(99 + copy);
        plain[far..far + key.len()].copy_from_slice(&key);
        std::fs::write(files.join(format!("plain{copy}")), &plain).unwrap();
    }
    std::fs::write(db.join("vi.ndb"), ndb).unwrap();
    std::fs::write(db.join("vi.ldb"), ldb).unwrap();
    for allmatch in [true, false] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        let found = theirs.values().filter(|v| v.is_found()).count();
        assert!(
            found >= 16,
            "only {found} files found by clamscan: the test lost its power"
        );
        assert_eq!(theirs, ours, "allmatch {allmatch}");
    }
}
