//! Which profile a run uses: one of the embedded tiers (`medium`, `high`,
//! `ultra`), a TOML file, `auto` (the tier nearest to this machine), or none
//! (the embedded defaults of [`ServerConfig`](super::ServerConfig)).
//!
//! The tiers are compiled in from `hardware-profiles/*.toml`, so the binary
//! needs no files at run time; a path loads any file in the same format.
//! Parsing stops at the first problem and names the file, the key and the
//! reason: TOML syntax, a top-level key outside a table, an unknown table or
//! key. Types and ranges are checked when the values are applied
//! ([`super::layers`]).

use std::borrow::Cow;
use std::path::Path;

use toml::Value;

use super::keys::{self, TABLES};
use super::layers::LoadError;
use super::machine::{self, MachineFacts};

/// The tiers shipped inside the binary: name and TOML text.
pub const EMBEDDED: [(&str, &str); 3] = [
    (
        "medium",
        include_str!("../../../hardware-profiles/medium.toml"),
    ),
    ("high", include_str!("../../../hardware-profiles/high.toml")),
    (
        "ultra",
        include_str!("../../../hardware-profiles/ultra.toml"),
    ),
];

/// A profile's text and where it came from.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `medium`, `high`, `ultra`, or the file name of a custom profile.
    pub name: String,
    /// Where the text came from, as error messages name it.
    pub file: String,
    pub text: Cow<'static, str>,
}

impl Profile {
    /// The embedded tier `name`.
    pub fn embedded(name: &str) -> Option<Profile> {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Profile {
                name: (*n).to_string(),
                file: format!("hardware-profiles/{n}.toml (embedded)"),
                text: Cow::Borrowed(text),
            })
    }

    /// A profile file on disk.
    pub fn from_path(path: &Path) -> Result<Profile, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadError::new(
                path.display().to_string(),
                None,
                format!("cannot read profile: {e} (built-in profiles: {BUILT_IN})"),
            )
        })?;
        Ok(Profile {
            name: path
                .file_stem()
                .map_or_else(|| "custom".into(), |s| s.to_string_lossy().into_owned()),
            file: path.display().to_string(),
            text: Cow::Owned(text),
        })
    }

    /// The `(key, value)` pairs the profile sets, in file order by table.
    pub fn entries(&self) -> Result<Vec<(&'static str, Value)>, LoadError> {
        parse_entries(&self.file, &self.text)
    }
}

/// What `--profile` selected, and why when `auto` chose.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `None`: the embedded defaults alone.
    pub profile: Option<Profile>,
    /// For `auto`: what it read from the machine and why it chose.
    pub why: Option<String>,
}

/// Resolves `--profile`: `medium|high|ultra|auto|default|PATH`; `None` or
/// `default` selects no profile. `facts` is only read for `auto`.
pub fn select(
    spec: Option<&str>,
    facts: impl FnOnce() -> MachineFacts,
) -> Result<Selection, LoadError> {
    let spec = match spec {
        None | Some("default") => {
            return Ok(Selection {
                profile: None,
                why: None,
            })
        }
        Some(spec) => spec,
    };
    if spec == "auto" {
        let facts = facts();
        let (tier, why) = machine::pick_tier(&facts);
        return Ok(Selection {
            profile: tier.and_then(Profile::embedded),
            why: Some(why),
        });
    }
    if let Some(profile) = Profile::embedded(spec) {
        return Ok(Selection {
            profile: Some(profile),
            why: None,
        });
    }
    let path = Path::new(spec);
    if !path.exists() {
        if let Some(name) = near_built_in(spec) {
            return Err(LoadError::new(
                "--profile",
                None,
                format!("no profile {spec:?}: did you mean {name}?"),
            ));
        }
    }
    Ok(Selection {
        profile: Some(Profile::from_path(path)?),
        why: None,
    })
}

/// The names `--profile` takes besides a path, for hints.
const BUILT_IN: &str = "medium, high, ultra, auto, default";

/// The built-in name `spec` is probably a typo of (edit distance at most
/// 2, and less than the name's length so `x` is not "did you mean high"),
/// if any: what `--profile hihg` meant when no file `hihg` exists.
fn near_built_in(spec: &str) -> Option<&'static str> {
    BUILT_IN
        .split(", ")
        .map(|name| (keys::edit_distance(name, spec), name))
        .filter(|(d, name)| *d <= 2 && *d < name.len())
        .min()
        .map(|(_, name)| name)
}

/// Parses profile text into `(key, value)` pairs; refuses bad syntax, keys
/// outside a table, unknown tables and unknown keys. Everything but a
/// syntax error is collected: all of a file's unknown keys are reported at
/// once.
pub fn parse_entries(file: &str, text: &str) -> Result<Vec<(&'static str, Value)>, LoadError> {
    let refuse = |key: Option<String>, reason: String| LoadError::new(file, key, reason);
    let mut errors = Vec::new();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let reason = format!("invalid TOML: {}", e.message().trim());
        refuse(line.map(|l| format!("line {l}")), reason)
    })?;
    let mut entries = Vec::new();
    // Tables in their canonical order, so the first error is deterministic.
    let mut names: Vec<&String> = table.keys().collect();
    names.sort_by_key(|name| TABLES.iter().position(|t| t == name).unwrap_or(usize::MAX));
    for name in names {
        let value = &table[name];
        let Value::Table(inner) = value else {
            let reason = match keys::by_field(name) {
                Some((_, key)) => format!(
                    "keys live in tables: write it as [{}] {} (key {})",
                    key.table, key.field, key.dotted
                ),
                None => keys::unknown_key_reason(name),
            };
            errors.push(refuse(Some(name.clone()), reason));
            continue;
        };
        if !TABLES.contains(&name.as_str()) {
            errors.push(refuse(
                Some(format!("[{name}]")),
                format!("unknown table (tables: {})", TABLES.join(", ")),
            ));
            continue;
        }
        for (field, value) in inner {
            let dotted = format!("{name}.{field}");
            match keys::find(&dotted) {
                Some((_, key)) => entries.push((key.dotted, value.clone())),
                None => errors.push(refuse(
                    Some(dotted.clone()),
                    keys::unknown_key_reason(&dotted),
                )),
            }
        }
    }
    match LoadError::all(errors) {
        Some(error) => Err(error),
        None => Ok(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_machine() -> MachineFacts {
        panic!("only auto reads the machine")
    }

    fn refusal(text: &str) -> String {
        parse_entries("bad.toml", text)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn names_select_embedded_tiers_and_default_selects_none() {
        for name in ["medium", "high", "ultra"] {
            let selection = select(Some(name), no_machine).expect("embedded");
            let profile = selection.profile.expect("a profile");
            assert_eq!(profile.name, name);
            assert_eq!(
                profile.file,
                format!("hardware-profiles/{name}.toml (embedded)")
            );
        }
        assert!(select(None, no_machine).expect("none").profile.is_none());
        assert!(select(Some("default"), no_machine)
            .expect("none")
            .profile
            .is_none());
    }

    #[test]
    fn a_missing_file_is_refused_with_its_path() {
        let err = select(Some("/nonexistent/hihg.toml"), no_machine).expect_err("refused");
        assert_eq!(err.origin, "/nonexistent/hihg.toml");
        assert!(err.reason.starts_with("cannot read profile:"), "{err}");
    }

    #[test]
    fn a_name_near_a_built_in_profile_gets_a_hint() {
        for (spec, meant) in [("hihg", "high"), ("meduim", "medium"), ("ultr", "ultra")] {
            let err = select(Some(spec), no_machine).expect_err(spec);
            assert_eq!(
                err.to_string(),
                format!("--profile: no profile \"{spec}\": did you mean {meant}?")
            );
        }
        // Far from every name: read as a path, as before.
        let err = select(Some("my-box"), no_machine).expect_err("no such file");
        assert!(err.reason.starts_with("cannot read profile:"), "{err}");
    }

    #[test]
    fn every_unknown_key_and_table_of_a_file_is_reported() {
        let err = parse_entries(
            "bad.toml",
            "workers = 2\n[net]\nx = 1\n[limits]\nmax_mesage_size = 1\ncomand_rate = 5\n",
        )
        .expect_err("refused");
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(lines.iter().all(|l| l.starts_with("bad.toml: ")), "{err}");
        assert!(lines.contains(
            &"bad.toml: limits.comand_rate: unknown key (did you mean limits.command_rate?)"
        ));
    }

    #[test]
    fn auto_reads_the_machine_and_says_why() {
        let small = || MachineFacts {
            cpus: 2,
            mem_total: 4 << 30,
            disks: vec![],
        };
        let selection = select(Some("auto"), small).expect("auto");
        assert!(selection.profile.is_none());
        assert!(selection.why.expect("why").contains("2 CPUs"));
    }

    #[test]
    fn entries_come_with_their_dotted_keys() {
        let entries = parse_entries(
            "ok.toml",
            "[limits]\nmax_message_size = \"1 MiB\"\n[server]\nworkers = 2\n",
        )
        .expect("parses");
        let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["server.workers", "limits.max_message_size"]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = refusal("[server]\nworkers = 2\nbacklog = = 3\n");
        assert!(err.starts_with("bad.toml: line 3: invalid TOML:"), "{err}");
    }

    #[test]
    fn keys_outside_tables_unknown_tables_and_unknown_keys_are_refused() {
        assert_eq!(
            refusal("workers = 2\n"),
            "bad.toml: workers: keys live in tables: write it as [server] workers \
             (key server.workers)"
        );
        assert!(refusal("[net]\nx = 1\n").starts_with("bad.toml: [net]: unknown table"));
        assert_eq!(
            refusal("[limits]\nmax_mesage_size = 1\n"),
            "bad.toml: limits.max_mesage_size: unknown key (did you mean \
             limits.max_message_size?)"
        );
    }
}
