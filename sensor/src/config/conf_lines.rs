//! The line grammar ClamAV's configuration files share (clamd.conf, freshclam.conf): `Option value` per
//! line, `#` comments and blank lines skipped, ClamAV's unedited sample refused while it has its `Example`
//! line, an unknown option an error naming `FILE:LINE` (with the known option it most likely means).
//!
//! Owns: splitting lines and those three refusals. Never: knows any option or checks a value (each file's
//! parser does, with its own table).

use std::path::Path;

/// One `Option value` line; `value` is empty when the line has none.
pub struct OptionLine<'a> {
    pub number: usize,
    pub option: &'a str,
    pub value: &'a str,
}

impl OptionLine<'_> {
    /// `FILE:LINE: Option: what`.
    pub fn error(&self, file: &Path, what: &str) -> String {
        format!(
            "{}:{}: {}: {what}",
            file.display(),
            self.number,
            self.option
        )
    }
}

/// The option lines of `text` (the file `file`, read by `program`), each with an option `known` accepts;
/// `near` names the known option an unknown one most likely means.
pub fn option_lines<'a>(
    file: &'a Path,
    text: &'a str,
    program: &'a str,
    known: impl Fn(&str) -> bool + 'a,
    near: impl Fn(&str) -> Option<&'static str> + 'a,
) -> impl Iterator<Item = Result<OptionLine<'a>, String>> + 'a {
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (option, value) = match line.split_once(char::is_whitespace) {
            Some((o, v)) => (o, v.trim()),
            None => (line, ""),
        };
        let l = OptionLine {
            number: i + 1,
            option,
            value,
        };
        if option == "Example" {
            return Some(Err(l.error(
                file,
                &format!(
                    "this is ClamAV's unedited sample configuration; {program} refuses to run while \
                     the `Example` line is there, and so does the sensor: edit the file and remove it"
                ),
            )));
        }
        if !known(option) {
            let hint = near(option)
                .map(|real| format!(" (did you mean {real}? option names are case sensitive)"))
                .unwrap_or_default();
            return Some(Err(l.error(file, &format!("unknown option{hint}"))));
        }
        Some(Ok(l))
    })
}
