//! The layering rule of `core/src/lib.rs`, checked on the source: a module
//! imports only from modules listed above it in the crate doc's layout list.
//!
//! The list is read from `lib.rs` itself, so the doc and the check cannot
//! drift: a new `pub mod` that is not in the list fails here, and so does a
//! `crate::X` path (outside comments) to a module listed below its user.

use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module names of the layout list, top (lowest layer) first.
fn layers(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.strip_prefix("//! - [`"))
        .filter_map(|rest| rest.split_once("`]"))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn declared(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').to_string())
        .collect()
}

/// Every `.rs` file of module `name` (a file or a directory).
fn files_of(name: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The first path segment after every `crate::` outside `//` comments,
/// including each member of a `crate::{a, b::c}` group.
fn crate_imports(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for member in inner.split(',') {
                    let head = member.trim().split("::").next().unwrap_or("");
                    if !head.is_empty() {
                        out.push(head.to_string());
                    }
                }
            } else {
                let head: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(head);
            }
        }
    }
    out
}

#[test]
fn every_module_is_in_the_layout_list() {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("read lib.rs");
    let listed = layers(&lib);
    for module in declared(&lib) {
        assert!(
            listed.contains(&module),
            "`pub mod {module}` is not in lib.rs's layout list: place it in the layering"
        );
    }
}

#[test]
fn modules_import_only_from_layers_above() {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("read lib.rs");
    let listed = layers(&lib);
    assert!(
        listed.len() >= 10,
        "layout list not found in lib.rs: {listed:?}"
    );
    let mut violations = Vec::new();
    for (rank, module) in listed.iter().enumerate() {
        for file in files_of(module) {
            let source = fs::read_to_string(&file).expect("read source");
            for used in crate_imports(&source) {
                let allowed = used == *module || listed[..rank].contains(&used);
                if !allowed {
                    violations.push(format!(
                        "{}: `{module}` uses crate::{used}",
                        file.strip_prefix(src()).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_scan_sees_plain_and_grouped_paths() {
    let source = "use crate::pubsub::hub::Hub;\n\
                  use crate::{bus::Port, mailbox};\n\
                  // crate::server in a comment does not count\n\
                  let x = crate::stats::Histogram::new(); // crate::os\n";
    assert_eq!(crate_imports(source), ["pubsub", "bus", "mailbox", "stats"]);
}
