//! One database line into the [`Builder`]: the format's parser, then the table the record goes to (hash
//! tables, body and logical signatures, ignore lists, file type magic), every signature name interned once.
//!
//! Owns: the dispatch from a line's format to its parser and table. Never: reads files (that is `read`) or
//! lays out the image (that is `Builder::finish`).

use super::entries::{self};
use super::*;

impl Builder {
    pub(super) fn add_line(
        &mut self,
        format: Format,
        line: &str,
        official: bool,
    ) -> Result<(), String> {
        let fl = self.flevel;
        match format {
            Format::Ignore => {
                self.ignore.add_line(line)?;
                self.ignore_entries += 1;
                Ok(())
            }
            Format::FileType => match db::ftm::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(m) => {
                    self.filetype_lines += 1;
                    if m.magic_type == 0 && m.rtype == crate::unpack::cltype::ANY {
                        self.filetypes.push(m);
                        self.ignore_entries += 1;
                    } else {
                        self.skip(FILETYPE_NOT_APPLIED);
                    }
                    Ok(())
                }
            },
            // Read whole by `add_yara`, never line by line.
            Format::Yara => Ok(()),
            Format::Unsupported(reason) => {
                self.skip(reason);
                Ok(())
            }
            Format::Hash | Format::Allow => match db::hash::parse(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if format == Format::Allow {
                        self.allow.insert(sig.kind, sig.digest(), sig.size, 0);
                        // clamscan counts allowlist lines among its "Known viruses" (tests/ORACLE.md §5).
                        self.signature_count += 1;
                    } else if !self.ignored(sig.name, line) {
                        let name = self.intern(sig.name, official)?;
                        self.hashes.insert(sig.kind, sig.digest(), sig.size, name);
                        self.signature_count += 1;
                    }
                    Ok(())
                }
            },
            Format::SectionHash | Format::ImportHash => {
                let layout = if format == Format::SectionHash {
                    Layout::SizeFirst
                } else {
                    Layout::HashFirst
                };
                match db::hash::parse_as(line, fl, layout)? {
                    Parsed::Skip(r) => {
                        self.skip(r);
                        Ok(())
                    }
                    Parsed::Sig(sig) => {
                        if !self.ignored(sig.name, line) {
                            let name = self.intern(sig.name, official)?;
                            let table = if format == Format::SectionHash {
                                &mut self.sections
                            } else {
                                &mut self.imports
                            };
                            table.insert(sig.kind, sig.digest(), sig.size, name);
                            self.signature_count += 1;
                        }
                        Ok(())
                    }
                }
            }
            Format::Body => match db::ndb::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if self.ignored(&sig.name, line) {
                        return Ok(());
                    }
                    check_body_pattern(&sig.pattern)?;
                    let id = self.owners.len() as PatternId;
                    self.matcher.add(id, &sig.pattern)?;
                    let name = self.intern(&sig.name, official)?;
                    self.owners
                        .push(entries::encode_owner(Owner::Body(self.bodies.len() as u32)));
                    self.bodies.push(entries::encode_body(&BodyEntry {
                        name,
                        target: sig.target,
                        offset: sig.offset,
                        is_static: is_static(&sig.pattern),
                    }));
                    self.signature_count += 1;
                    Ok(())
                }
            },
            Format::Container => match db::cdb::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if !self.ignored(&sig.name, line) {
                        let name = self.intern(&sig.name, official)?;
                        self.containers.add_cdb(name, sig)?;
                        self.signature_count += 1;
                    }
                    Ok(())
                }
            },
            Format::Logical => match db::ldb::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if !self.ignored(&sig.name, line) {
                        self.add_logical(sig, official)?;
                    }
                    Ok(())
                }
            },
        }
    }

    fn ignored(&mut self, name: &str, line: &str) -> bool {
        if self.ignore.is_empty() || !self.ignore.ignores(name, line) {
            return false;
        }
        self.skip("ignored by .ign/.ign2");
        true
    }

    fn intern(&mut self, name: &str, official: bool) -> Result<u32, String> {
        self.names
            .push(name, if official { "" } else { ".UNOFFICIAL" })
    }

    fn add_logical(&mut self, sig: LogicalSig, official: bool) -> Result<(), String> {
        let lsig = self.logicals.recs.len() as u32;
        // A pattern the matcher refuses fails the whole build, so ids never drift from `owners`.
        let mut matcher_ids = Vec::new();
        for (sub, s) in sig.subsigs.iter().enumerate() {
            for p in &s.patterns {
                let id = (self.owners.len() + matcher_ids.len()) as PatternId;
                self.matcher
                    .add(id, p)
                    .map_err(|e| format!("subsignature {sub}: {e}"))?;
                matcher_ids.push(entries::encode_owner(Owner::Sub {
                    lsig,
                    sub: sub as u32,
                }));
            }
        }
        self.owners.extend(matcher_ids);
        specials::encode(lsig, &sig.specials, &mut self.specials);
        let name = self.intern(&sig.name, official)?;
        if let Some(c) = sig.containers {
            self.containers.add_logical(lsig, c);
        }
        if let Some(ty) = sig.handler {
            self.containers.add_handler(lsig, ty);
        }
        let first_counter = self.counters;
        self.counters += sig.subsigs.len() as u32;
        self.logicals.push(&LogicalEntry {
            name,
            target: sig.target,
            file_size: sig.file_size,
            entry_point: sig.entry_point,
            sections: sig.sections,
            expr: sig.expr,
            offsets: sig.subsigs.iter().map(|s| s.offset).collect(),
            first_counter,
        });
        self.signature_count += 1;
        Ok(())
    }
}
