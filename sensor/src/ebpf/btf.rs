//! A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux): enough to find the byte offset of a
//! member of a named struct, looking through anonymous struct/union members. The eBPF programs get these
//! offsets as globals because rustc emits no CO-RE relocations.

use sensor_common::Offsets;

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

struct Type {
    name_off: u32,
    kind: u32,
    /// size (struct/union) or referenced type id (typedef, const, ...).
    size_or_type: u32,
    members: Vec<Member>,
}

pub struct Btf {
    strings: Vec<u8>,
    /// Index = type id (0 is `void`).
    types: Vec<Type>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("BTF truncated at byte {at}"))
}

impl Btf {
    pub fn from_sys_fs() -> Result<Btf, String> {
        let data = std::fs::read("/sys/kernel/btf/vmlinux")
            .map_err(|e| format!("cannot read /sys/kernel/btf/vmlinux: {e}"))?;
        Btf::parse(&data)
    }

    pub fn parse(b: &[u8]) -> Result<Btf, String> {
        if b.len() < 24 || u16::from_le_bytes([b[0], b[1]]) != BTF_MAGIC {
            return Err("not little-endian BTF (bad magic)".into());
        }
        let hdr_len = u32_at(b, 4)? as usize;
        let (type_off, type_len) = (u32_at(b, 8)? as usize, u32_at(b, 12)? as usize);
        let (str_off, str_len) = (u32_at(b, 16)? as usize, u32_at(b, 20)? as usize);
        let strings = b
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or("BTF string section out of bounds")?
            .to_vec();
        let tb = b
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or("BTF type section out of bounds")?;
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
        }];
        let mut at = 0;
        while at < tb.len() {
            let name_off = u32_at(tb, at)?;
            let info = u32_at(tb, at + 4)?;
            let size_or_type = u32_at(tb, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let extra = match kind {
                1 | 14 | 17 => 4, // INT, VAR, DECL_TAG
                3 => 12,          // ARRAY
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let off = u32_at(tb, m + 8)?;
                        members.push(Member {
                            name_off: u32_at(tb, m)?,
                            type_id: u32_at(tb, m + 4)?,
                            bit_offset: if kind_flag { off & 0xff_ffff } else { off },
                        });
                    }
                    vlen * 12
                }
                6 | 13 => vlen * 8,            // ENUM, FUNC_PROTO
                15 | 19 => vlen * 12,          // DATASEC, ENUM64
                2 | 7 | 8..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
                k => return Err(format!("unknown BTF kind {k}")),
            };
            at += extra;
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                members,
            });
        }
        Ok(Btf { strings, types })
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize).map(|t| t.kind) {
                Some(KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) => {
                    id = self.types[id as usize].size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset of `member` in `struct name` (the definition, not a forward declaration).
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, String> {
        let id = self
            .types
            .iter()
            .position(|t| {
                t.kind == KIND_STRUCT
                    && !t.members.is_empty()
                    && self.name(t.name_off) == name.as_bytes()
            })
            .ok_or_else(|| format!("struct {name} not in BTF"))?;
        self.find_member(id as u32, member.as_bytes(), 0)
            .map(|bits| bits / 8)
            .ok_or_else(|| format!("struct {name} has no member {member}"))
    }

    fn find_member(&self, id: u32, member: &[u8], depth: u32) -> Option<u32> {
        let t = self.types.get(self.resolve(id) as usize)?;
        if depth > 8 || !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for m in &t.members {
            if m.name_off != 0 && self.name(m.name_off) == member {
                return Some(m.bit_offset);
            }
        }
        // Anonymous struct/union members (mm_struct keeps most fields in one).
        t.members.iter().filter(|m| m.name_off == 0).find_map(|m| {
            self.find_member(m.type_id, member, depth + 1)
                .map(|b| b + m.bit_offset)
        })
    }

    /// Every offset the programs need.
    pub fn offsets(&self, own_tgid: u32) -> Result<Offsets, String> {
        let o = |s: &str, m: &str| self.member_offset(s, m);
        // 6.11+: i_ctime_sec / i_ctime_nsec; before: struct timespec64 __i_ctime (tv_sec, then tv_nsec).
        let ctime = match (o("inode", "i_ctime_sec"), o("inode", "i_ctime_nsec")) {
            (Ok(sec), Ok(nsec)) => Some((sec, nsec)),
            _ => o("inode", "__i_ctime").ok().map(|t| (t, t + 8)),
        };
        let (ctime_sec, ctime_nsec) = ctime.unwrap_or((0, 0));
        Ok(Offsets {
            valid: 1,
            task_pid: o("task_struct", "pid")?,
            task_tgid: o("task_struct", "tgid")?,
            task_real_parent: o("task_struct", "real_parent")?,
            task_real_cred: o("task_struct", "real_cred")?,
            task_mm: o("task_struct", "mm")?,
            task_start_time: o("task_struct", "start_time")?,
            task_comm: o("task_struct", "comm")?,
            // kuid_t is `struct { uid_t val; }`: the member's offset is the value's.
            cred_uid: o("cred", "uid")?,
            cred_euid: o("cred", "euid")?,
            mm_exe_file: o("mm_struct", "exe_file")?,
            file_f_inode: o("file", "f_inode")?,
            inode_i_ino: o("inode", "i_ino")?,
            inode_i_sb: o("inode", "i_sb")?,
            sb_s_dev: o("super_block", "s_dev")?,
            inode_ctime_sec: ctime_sec,
            inode_ctime_nsec: ctime_nsec,
            ctime_ok: u32::from(ctime.is_some()),
            own_tgid,
            _pad: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_kernels_offsets_when_available() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            crate::test_support::skip_or_fail(
                "reads_the_running_kernels_offsets_when_available",
                "no /sys/kernel/btf/vmlinux (kernel built without CONFIG_DEBUG_INFO_BTF)",
            );
            return;
        }
        // A BTF the kernel has but this parser refuses is a failure, not a skip.
        let btf = Btf::from_sys_fs().expect("the running kernel's BTF parses");
        let o = btf.offsets(1).expect("all offsets found");
        assert!(o.task_tgid > 0 && o.task_pid > 0 && o.task_tgid != o.task_pid);
        assert!(
            o.mm_exe_file > 0,
            "exe_file is inside mm_struct's anonymous struct"
        );
        assert_eq!(o.cred_uid % 4, 0);
        assert_eq!(o.ctime_ok, 1, "inode ctime found");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(b"not btf at all, really not").is_err());
    }
}
