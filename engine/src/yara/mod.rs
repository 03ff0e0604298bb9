//! YARA rules (`.yar`, `.yara`, loose or inside a signed container), loaded and run as clamscan 1.4.6 does
//! (tests/ORACLE.md §13f).
//!
//! Owns: cutting a rule file into rules (`split`), clamscan's refusals (`check`), compiling the rules it
//! keeps with boreal (a pure-Rust YARA engine, built without modules: clamscan has none), the image
//! sections that keep them, and running them on one file's bytes. Reports rule matches as
//! `YARA.<rule>` names, in load order, each with its place among the logical signatures (clamscan reports
//! YARA rules among `.ldb` signatures, in load order).
//!
//! Never: reads files (the compiler hands it text), decides verdict order across signature kinds (the
//! scanner does), or lets a rule fail the load except where clamscan refuses the whole database.
//!
//! Kept in the image as source text: boreal cannot save compiled rules without its `serialize` feature's
//! extra format, so a compiled database keeps the text of the rules it accepted and compiles them again
//! when opened (the checks and name lookups are not repeated).

mod check;
mod split;
#[cfg(test)]
mod tests;

use crate::image::{ids, Arr, Image, ImageBuilder, ImageError};
use crate::{LineError, LoadError};
use boreal_parser::file::YaraFileComponent;
use boreal_parser::rule::{Rule, VariableDeclarationValue};
use bytemuck::{Pod, Zeroable};
use std::collections::HashMap;
use std::path::Path;

/// The name of a private rule: loaded and counted, never reported.
const PRIVATE: u32 = u32::MAX;

/// One loaded rule in the image: its reported name (`PRIVATE` for none), how many logical signatures
/// were loaded before it (its place in the verdict order), and its text in the source section.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct RuleRec {
    pub name: u32,
    pub position: u32,
    pub src_start: u32,
    pub src_end: u32,
}

/// Records a rule's reported name: given the bare rule name and the full one, its name id, `None` when
/// the ignore lists name the rule.
pub(crate) type Intern<'a> = dyn FnMut(&str, &str) -> Result<Option<u32>, String> + 'a;

/// A rule file's outcome: rules loaded (counted as signatures) and rules dropped, by reason.
#[derive(Debug, Default)]
pub(crate) struct FileOutcome {
    pub loaded: u64,
    pub skipped: Vec<&'static str>,
}

/// Collects the rules of a build, compiling each as it comes so a rule can use the rules before it, in
/// any file (clamscan keeps every rule of a load in one namespace).
#[derive(Default)]
pub(crate) struct YaraBuilder {
    compiler: Option<boreal::Compiler>,
    source: Vec<u8>,
    recs: Vec<RuleRec>,
}

fn new_compiler() -> boreal::Compiler {
    // No modules: clamscan 1.4.6 accepts `import` and knows no module (`pe.x` is an undefined identifier).
    let mut c = boreal::compiler::CompilerBuilder::default().build();
    c.set_params(
        boreal::compiler::CompilerParams::default()
            .disable_includes(true)
            .max_strings_per_rule(check::MAX_STRINGS),
    );
    c
}

/// The 1-based line of byte `at` of `src`.
fn line_of(src: &[u8], at: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &src[..at.min(src.len())]).count()
}

/// The text boreal compiles for a rule clamscan loads, changed where clamscan reads it otherwise (blanks
/// keep every offset): the `global` modifiers before `rule` go (clamscan runs a global rule as any other,
/// and one that fails does not stop the others), and so does case-insensitivity of regular expressions
/// (clamscan matches `/x/i` and `/x/ nocase` case-sensitively).
fn as_clamscan_reads(text: &str, rule: &Rule) -> String {
    let mut out = text.as_bytes().to_vec();
    let head = text.find("rule").unwrap_or(0);
    blank_words(&mut out[..head], b"global");
    for v in &rule.variables {
        if !matches!(v.value, VariableDeclarationValue::Regex(_)) {
            continue;
        }
        let Some(decl) = out.get_mut(v.span.clone()) else {
            continue;
        };
        // After the closing slash: the flags, then the modifiers.
        let Some(close) = memchr::memrchr(b'/', decl) else {
            continue;
        };
        let tail = &mut decl[close + 1..];
        for b in tail.iter_mut().take_while(|b| b.is_ascii_alphabetic()) {
            if *b == b'i' {
                *b = b' ';
            }
        }
        blank_words(tail, b"nocase");
    }
    // Only ASCII bytes were replaced by spaces.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Replaces each whole-word `word` in `text` with spaces.
fn blank_words(text: &mut [u8], word: &[u8]) {
    let is_word = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
    let mut at = 0;
    while let Some(p) = memchr::memmem::find(&text[at..], word).map(|p| at + p) {
        let end = p + word.len();
        let alone = (p == 0 || !is_word(text[p - 1])) && text.get(end).is_none_or(|&b| !is_word(b));
        if alone {
            text[p..end].fill(b' ');
        }
        at = end;
    }
}

impl YaraBuilder {
    /// Reads one rule file. `position` is the number of logical signatures loaded so far; `intern`
    /// records a reported name (`YARA.<rule>`, before any suffix) and gives its id, or `None` for a rule
    /// the ignore lists name (by its bare name: clamscan 1.4.6 ignores `r` for a `r` line in `.ign2`, not
    /// for `YARA.r`). clamscan's fatal refusals are pushed to `errors` as `FILE:LINE`.
    pub fn add_file(
        &mut self,
        path: &Path,
        text: &[u8],
        position: u32,
        intern: &mut Intern,
        errors: &mut LoadError,
    ) -> FileOutcome {
        let mut out = FileOutcome::default();
        for piece in split::split(text) {
            let bytes = &text[piece.start..piece.end];
            let fail = |line_at: usize, message: String| LineError {
                file: path.to_path_buf(),
                line: line_of(text, piece.start + line_at),
                message,
            };
            let Ok(piece_text) = std::str::from_utf8(bytes) else {
                out.skipped.push("YARA rule that is not UTF-8 text");
                continue;
            };
            let parsed = match boreal_parser::parse(piece_text) {
                Ok(f) => f,
                Err(_) => {
                    out.skipped.push("YARA rule with a syntax error");
                    continue;
                }
            };
            for component in parsed.components {
                let rule = match component {
                    // clamscan accepts imports and has no module to use.
                    YaraFileComponent::Import(_) => continue,
                    YaraFileComponent::Include(_) => {
                        out.skipped.push("YARA include not supported");
                        continue;
                    }
                    YaraFileComponent::Rule(r) => r,
                };
                match check::check(&rule, bytes) {
                    check::Verdict::Load => {}
                    check::Verdict::Skip(reason) => {
                        out.skipped.push(reason);
                        continue;
                    }
                    check::Verdict::Malformed { message, at } => {
                        errors.push(fail(at, message));
                        continue;
                    }
                }
                // A piece holds one rule (the cut is at each `rule` keyword).
                let compiled = as_clamscan_reads(piece_text, &rule);
                let compiler = self.compiler.get_or_insert_with(new_compiler);
                if compiler.add_rules_str(&compiled).is_err() {
                    // Undefined identifiers (module fields, external variables), duplicate names,
                    // unreferenced strings: clamscan drops the rule with an error message and goes on.
                    out.skipped.push("YARA rule that does not compile");
                    continue;
                }
                let name = if rule.is_private {
                    PRIVATE
                } else {
                    match intern(&rule.name, &format!("YARA.{}", rule.name)) {
                        Ok(Some(id)) => id,
                        // Ignored: compiled and counted all the same (clamscan 1.4.6 still counts it
                        // in "Known viruses"), never reported.
                        Ok(None) => PRIVATE,
                        Err(m) => {
                            errors.push(fail(0, m));
                            continue;
                        }
                    }
                };
                let (Ok(src_start), Ok(src_end)) = (
                    u32::try_from(self.source.len()),
                    u32::try_from(self.source.len() + compiled.len()),
                ) else {
                    errors.push(fail(0, "YARA rule text exceeds 4 GiB".into()));
                    continue;
                };
                self.source.extend_from_slice(compiled.as_bytes());
                self.recs.push(RuleRec {
                    name,
                    position,
                    src_start,
                    src_end,
                });
                out.loaded += 1;
            }
        }
        out
    }

    /// Adds `shift` to every reported name id (names interned before this builder's were put first).
    pub fn shift_names(&mut self, shift: u32) {
        for r in self.recs.iter_mut().filter(|r| r.name != PRIVATE) {
            r.name += shift;
        }
    }

    pub fn write(self, img: &mut ImageBuilder) {
        img.put(ids::YARA_SOURCE, self.source);
        img.put(ids::YARA_RULES, self.recs);
    }
}

/// The rules of a database, compiled, ready to run on any number of threads.
pub(crate) struct YaraRules {
    scanner: boreal::Scanner,
    /// Rule records in load order, and each rule's index by name.
    recs: Vec<RuleRec>,
    by_name: HashMap<String, usize>,
}

impl YaraRules {
    /// Compiles the rules kept in `image`; `None` when it has none.
    pub fn open(image: &Image) -> Result<Option<YaraRules>, ImageError> {
        let source: Arr<u8> = image.arr(ids::YARA_SOURCE)?;
        let recs = image.get(image.arr::<RuleRec>(ids::YARA_RULES)?).to_vec();
        if recs.is_empty() {
            return Ok(None);
        }
        let source = image.get(source);
        let corrupt = |what: &str| ImageError::Corrupt(format!("YARA rules: {what}"));
        let mut compiler = new_compiler();
        let mut by_name = HashMap::new();
        for (i, r) in recs.iter().enumerate() {
            let text = source
                .get(r.src_start as usize..r.src_end as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| corrupt("rule text out of bounds"))?;
            compiler
                .add_rules_str(text)
                .map_err(|_| corrupt("a rule no longer compiles"))?;
            let parsed = boreal_parser::parse(text).map_err(|_| corrupt("unreadable rule"))?;
            if let Some(YaraFileComponent::Rule(rule)) = parsed.components.into_iter().next() {
                by_name.insert(rule.name, i);
            }
        }
        Ok(Some(YaraRules {
            scanner: compiler.finalize(),
            recs,
            by_name,
        }))
    }

    /// The rules that match `data`, in load order, as `(position, name id)` (see [`RuleRec`]).
    pub fn scan(&self, data: &[u8]) -> Vec<(u32, u32)> {
        let result = match self.scanner.scan_mem(data) {
            Ok(r) => r,
            // A scan cut short (a timeout, which is not set here) still reports what it found.
            Err((_, r)) => r,
        };
        let mut hits: Vec<usize> = result
            .rules
            .iter()
            .filter(|r| r.matched)
            .filter_map(|r| self.by_name.get(r.name).copied())
            .collect();
        hits.sort_unstable();
        hits.into_iter()
            .map(|i| self.recs[i])
            .filter(|r| r.name != PRIVATE)
            .map(|r| (r.position, r.name))
            .collect()
    }
}
