//! A check of a crate's source layout (feature `testing`): which modules may import
//! which, and that the imports between its files form no loop.
//!
//! It reads the sources, not the compiler's view: every `crate::`, `super::` and
//! `self::` path in the code (comments stripped, `use` groups expanded) is resolved to
//! the file that defines it, following `pub use` re-exports of a module's children. A
//! module's use of its own submodules is no edge of the loop check (a `mod.rs` that
//! dispatches to the files it is split into); everything else is. A test per crate
//! states its rules and asserts that [`check`] finds nothing, so a forbidden import or
//! a loop fails the suite with the offending file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The rules of one crate.
pub struct Rules<'a> {
    /// `(from, to)`: nothing under module path `from` may import anything under `to`
    /// (paths like `"accounts"` or `"http::pages"`; `""` is the whole crate).
    pub forbidden: &'a [(&'a str, &'a str)],
    /// `(crate name, modules)`: only files under these module paths may name the
    /// external crate (e.g. `axum` only in the HTTP layer and the wiring).
    pub external_only_in: &'a [(&'a str, &'a [&'a str])],
    /// Files whose imports are not checked: `main.rs` and `lib.rs` are entry points.
    pub entry_points: &'a [&'a str],
}

/// One broken rule, with where it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Violation {
    Forbidden {
        file: String,
        line: usize,
        imports: String,
    },
    External {
        file: String,
        line: usize,
        krate: String,
    },
    /// Files that import each other, in order (the last imports the first).
    Loop(Vec<String>),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forbidden {
                file,
                line,
                imports,
            } => write!(
                f,
                "{file}:{line} imports {imports}, which its layer may not"
            ),
            Self::External { file, line, krate } => {
                write!(
                    f,
                    "{file}:{line} uses the `{krate}` crate outside its layer"
                )
            }
            Self::Loop(files) => write!(f, "import loop: {}", files.join(" -> ")),
        }
    }
}

/// Every violation of `rules` in the crate whose sources are under `src`.
pub fn check(src: &Path, rules: &Rules<'_>) -> std::io::Result<Vec<Violation>> {
    let files = read_modules(src)?;
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let reexports = reexports(&files, &known);
    let mut violations = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        if rules.entry_points.contains(&file.name.as_str()) {
            continue;
        }
        for (line, path) in &file.paths {
            let target = resolve(path, &known, &reexports);
            // A module may use its own submodules: they are its implementation, split
            // into files. Their imports of it still count, so loops through it show.
            if !target.starts_with(&file.module) {
                edges
                    .entry(file.module.clone())
                    .or_default()
                    .insert(target.clone());
            }
            let target_name = target.join("::");
            for (from, to) in rules.forbidden {
                if under(&file.module, from) && under(&target, to) {
                    violations.push(Violation::Forbidden {
                        file: file.name.clone(),
                        line: *line,
                        imports: format!("crate::{target_name}"),
                    });
                }
            }
        }
        for (krate, allowed) in rules.external_only_in {
            if allowed.iter().any(|m| under(&file.module, m)) {
                continue;
            }
            if let Some(line) = file.mentions(krate) {
                violations.push(Violation::External {
                    file: file.name.clone(),
                    line,
                    krate: (*krate).to_owned(),
                });
            }
        }
    }
    let names: BTreeMap<&Vec<String>, &str> =
        files.iter().map(|f| (&f.module, f.name.as_str())).collect();
    for cycle in cycles(&edges) {
        violations.push(Violation::Loop(
            cycle
                .iter()
                .map(|m| names.get(m).copied().unwrap_or("?").to_owned())
                .collect(),
        ));
    }
    Ok(violations)
}

/// `module` is `prefix` or inside it.
fn under(module: &[String], prefix: &str) -> bool {
    let prefix: Vec<&str> = prefix.split("::").filter(|s| !s.is_empty()).collect();
    module.len() >= prefix.len() && module.iter().zip(&prefix).all(|(a, b)| a == b)
}

struct SourceFile {
    /// Relative to `src`, e.g. `http/pages/mod.rs`.
    name: String,
    /// Its module path, e.g. `["http", "pages"]`.
    module: Vec<String>,
    /// The code with comments removed, by line.
    lines: Vec<String>,
    /// Absolute module paths it names, with their line numbers.
    paths: Vec<(usize, Vec<String>)>,
}

impl SourceFile {
    fn mentions(&self, krate: &str) -> Option<usize> {
        let needle = format!("{krate}::");
        self.lines
            .iter()
            .position(|l| {
                l.match_indices(&needle).any(|(i, _)| {
                    !l[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                })
            })
            .map(|i| i + 1)
    }
}

fn read_modules(src: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut paths = Vec::new();
    collect(src, &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let name = path
            .strip_prefix(src)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let module = module_of(&name);
        let lines: Vec<String> = std::fs::read_to_string(&path)?
            .lines()
            .map(strip_comment)
            .collect();
        let paths = named_paths(&lines, &module);
        files.push(SourceFile {
            name,
            module,
            lines,
            paths,
        });
    }
    Ok(files)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the root.
fn module_of(name: &str) -> Vec<String> {
    let mut parts: Vec<String> = name
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || matches!(name, "lib.rs" | "main.rs") {
        parts.pop();
    }
    parts
}

/// The line without a `//` comment (a `//` inside a string literal, as in a URL, is
/// kept: it follows a `:`).
fn strip_comment(line: &str) -> String {
    let mut from = 0;
    while let Some(i) = line[from..].find("//") {
        let at = from + i;
        if !line[..at].ends_with(':') {
            return line[..at].to_owned();
        }
        from = at + 2;
    }
    line.to_owned()
}

/// Every `crate::`, `super::` and `self::` path named in `lines`, made absolute. `use
/// super::*` is skipped: it is how a file's own test module sees the file.
fn named_paths(lines: &[String], module: &[String]) -> Vec<(usize, Vec<String>)> {
    // A statement may span lines: scan the whole text, remembering line starts.
    let text = lines.join("\n");
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for root in ["crate::", "super::", "self::"] {
        for (at, _) in text.match_indices(root) {
            if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let base: Vec<String> = match root {
                "crate::" => Vec::new(),
                // In `a/b.rs` (module a::b) and in `a/b/mod.rs` alike, `super` is `a`.
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.to_vec(),
            };
            let mut parser = Parser {
                text: &text[at + root.len()..],
            };
            for tail in parser.tree() {
                if root == "super::" && tail.is_empty() {
                    continue;
                }
                let mut path = base.clone();
                path.extend(tail);
                found.push((line_of(at), path));
            }
        }
    }
    found
}

/// A `use` tree after its root: `a::b::{c, d::{e, f as g}, self, *}`.
struct Parser<'a> {
    text: &'a str,
}

impl Parser<'_> {
    fn ident(&mut self) -> Option<String> {
        let trimmed = self.text.trim_start();
        let len = trimmed
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        if len == 0 {
            return None;
        }
        let ident = trimmed[..len].to_owned();
        self.text = &trimmed[len..];
        Some(ident)
    }

    fn eat(&mut self, token: &str) -> bool {
        let trimmed = self.text.trim_start();
        if let Some(rest) = trimmed.strip_prefix(token) {
            self.text = rest;
            true
        } else {
            false
        }
    }

    /// The paths this tree names, relative to its root; a glob or `self` names the
    /// module it is in.
    fn tree(&mut self) -> Vec<Vec<String>> {
        let mut prefix = Vec::new();
        loop {
            if self.eat("{") {
                let mut out = Vec::new();
                loop {
                    if self.eat("}") {
                        break;
                    }
                    for tail in self.tree() {
                        let mut path = prefix.clone();
                        path.extend(tail);
                        out.push(path);
                    }
                    if !self.eat(",") {
                        self.eat("}");
                        break;
                    }
                }
                return out;
            }
            if self.eat("*") {
                return vec![prefix];
            }
            match self.ident() {
                Some(ident) if ident == "self" => {}
                Some(ident) => prefix.push(ident),
                None => return vec![prefix],
            }
            if !self.eat("::") {
                // `path as alias`: the alias names nothing new.
                let rest = self.text;
                if self.ident().as_deref() == Some("as") {
                    self.ident();
                } else {
                    self.text = rest;
                }
                return vec![prefix];
            }
        }
    }
}

/// Per module: the names its `pub use child::...` re-exports, and from which module.
type Reexports = BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>;

fn reexports(files: &[SourceFile], known: &BTreeSet<Vec<String>>) -> Reexports {
    let mut map = Reexports::new();
    for file in files {
        for line in &file.lines {
            let Some(rest) = line.trim_start().strip_prefix("pub use ") else {
                continue;
            };
            let mut parser = Parser { text: rest };
            for tail in parser.tree() {
                let Some((name, from)) = tail.split_last() else {
                    continue;
                };
                let mut module = file.module.clone();
                module.extend(from.iter().cloned());
                if known.contains(&module) {
                    map.entry(file.module.clone())
                        .or_default()
                        .insert(name.clone(), module);
                }
            }
        }
    }
    map
}

/// The file that defines `path`: its longest prefix that is a module, then through
/// that module's re-exports.
fn resolve(path: &[String], known: &BTreeSet<Vec<String>>, reexports: &Reexports) -> Vec<String> {
    let mut len = path.len();
    while len > 0 && !known.contains(&path[..len]) {
        len -= 1;
    }
    let module = path[..len].to_vec();
    match (path.get(len), reexports.get(&module)) {
        (Some(name), Some(names)) => match names.get(name) {
            Some(from) if *from != module => {
                let via: Vec<String> = from.iter().chain(&path[len..]).cloned().collect();
                resolve(&via, known, reexports)
            }
            _ => module,
        },
        _ => module,
    }
}

/// Each loop in the graph once (one per strongly connected component, as a path
/// through it).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let mut found = Vec::new();
    let mut done: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in edges.keys() {
        if done.contains(start) {
            continue;
        }
        let mut stack = vec![start.clone()];
        let mut on_path: BTreeSet<Vec<String>> = BTreeSet::from([start.clone()]);
        if let Some(cycle) = walk(start, edges, &mut stack, &mut on_path, &done) {
            done.extend(cycle.iter().cloned());
            found.push(cycle);
        }
        done.insert(start.clone());
    }
    found
}

fn walk(
    node: &Vec<String>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    stack: &mut Vec<Vec<String>>,
    on_path: &mut BTreeSet<Vec<String>>,
    done: &BTreeSet<Vec<String>>,
) -> Option<Vec<Vec<String>>> {
    for next in edges.get(node).into_iter().flatten() {
        if on_path.contains(next) {
            let from = stack.iter().position(|n| n == next).unwrap_or(0);
            return Some(stack[from..].to_vec());
        }
        if done.contains(next) {
            continue;
        }
        stack.push(next.clone());
        on_path.insert(next.clone());
        if let Some(cycle) = walk(next, edges, stack, on_path, done) {
            return Some(cycle);
        }
        on_path.remove(next);
        stack.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Vec<String>> {
        Parser { text }.tree()
    }

    fn path(s: &str) -> Vec<String> {
        s.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn use_trees_expand_to_every_path_they_name() {
        assert_eq!(parse("a::b::C;"), vec![path("a::b::C")]);
        assert_eq!(
            parse("a::{b::{self, C}, d as e, f::*};"),
            vec![path("a::b"), path("a::b::C"), path("a::d"), path("a::f")]
        );
        assert_eq!(parse("a::b::c(x)"), vec![path("a::b::c")]);
    }

    #[test]
    fn comments_are_dropped_but_urls_in_strings_are_kept() {
        assert_eq!(strip_comment("use crate::a; // crate::b"), "use crate::a; ");
        assert_eq!(
            strip_comment("let u = \"http://x\";"),
            "let u = \"http://x\";"
        );
    }

    #[test]
    fn a_loop_between_files_and_a_forbidden_import_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path();
        std::fs::create_dir_all(src.join("low")).unwrap();
        std::fs::write(src.join("lib.rs"), "pub mod low; pub mod high;").unwrap();
        std::fs::write(
            src.join("low/mod.rs"),
            "pub mod a;\npub mod b;\npub use a::Thing;",
        )
        .unwrap();
        std::fs::write(src.join("low/a.rs"), "use super::b::f;\npub struct Thing;").unwrap();
        std::fs::write(
            src.join("low/b.rs"),
            "use crate::low::Thing;\npub fn f() {}",
        )
        .unwrap();
        std::fs::write(
            src.join("high.rs"),
            "use crate::low::Thing;\nuse axum::Router;",
        )
        .unwrap();
        let rules = Rules {
            forbidden: &[("low", "high")],
            external_only_in: &[("axum", &["high"])],
            entry_points: &["lib.rs"],
        };
        assert_eq!(
            check(src, &rules).unwrap(),
            vec![Violation::Loop(vec!["low/a.rs".into(), "low/b.rs".into()])]
        );

        std::fs::write(src.join("low/b.rs"), "pub fn f() { crate::high::g(); }").unwrap();
        std::fs::write(
            src.join("low/a.rs"),
            "pub struct Thing;\nfn r(_: axum::Router) {}",
        )
        .unwrap();
        assert_eq!(
            check(src, &rules).unwrap(),
            vec![
                Violation::External {
                    file: "low/a.rs".into(),
                    line: 2,
                    krate: "axum".into(),
                },
                Violation::Forbidden {
                    file: "low/b.rs".into(),
                    line: 1,
                    imports: "crate::high".into(),
                },
            ]
        );
    }
}
