// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Extraction of layouts and constants from the compiler (libclang), per ABI.
//!
//! For each ABI the chosen headers are compiled together as one translation unit. Headers
//! that do not compile for that ABI are dropped and recorded (see [`headers`]); the rest are
//! walked for records, typedefs and enums (see [`layout`]); then the object-like macros they
//! define are evaluated by the compiler in a second translation unit (see [`macros`]).

pub mod headers;
pub mod layout;
pub mod macros;

use crate::abi::Abi;
use crate::error::Error;
use crate::model::Snapshot;
use crate::tree::PublicHeaders;
use clang::{Clang, Index, TranslationUnit, Unsaved};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Owns the process-wide libclang instance and extracts snapshots with it.
#[derive(Debug)]
pub struct Extractor {
    clang: Clang,
    abis: Vec<Abi>,
}

impl Extractor {
    /// Loads libclang. Only one extractor can exist at a time in a process.
    pub fn new() -> Result<Self, Error> {
        Ok(Extractor {
            clang: Clang::new().map_err(Error::Libclang)?,
            abis: Abi::ALL.to_vec(),
        })
    }

    /// Loads libclang and extracts only the given ABIs.
    pub fn for_abis(abis: &[Abi]) -> Result<Self, Error> {
        let mut extractor = Self::new()?;
        extractor.abis = abis.to_vec();
        Ok(extractor)
    }

    /// Extracts one snapshot per ABI from the public headers of a tree, compiled as `view`.
    pub fn extract(
        &self,
        tree: &PublicHeaders,
        view: View,
    ) -> Result<BTreeMap<Abi, Snapshot>, Error> {
        self.extract_without(tree, view, &BTreeMap::new())
    }

    /// Like [`Extractor::extract`], leaving out per ABI the headers already known not to
    /// compile (those the tools view of the same tree skipped: the guest view only leaves
    /// declarations out, so they do not compile for a guest either). They are recorded as
    /// skipped with their known error.
    pub fn extract_without(
        &self,
        tree: &PublicHeaders,
        view: View,
        known: &BTreeMap<Abi, Vec<crate::model::SkippedHeader>>,
    ) -> Result<BTreeMap<Abi, Snapshot>, Error> {
        let candidates = tree.candidate_headers()?;
        let mut out = BTreeMap::new();
        for &abi in &self.abis {
            let skip = known.get(&abi).cloned().unwrap_or_default();
            let wanted: Vec<String> = candidates
                .iter()
                .filter(|c| !skip.iter().any(|k| &k.header == *c))
                .cloned()
                .collect();
            let mut snapshot = self.extract_abi(tree, abi, view, &wanted)?;
            let mut skipped = skip;
            skipped.append(&mut snapshot.skipped);
            snapshot.skipped = skipped;
            out.insert(abi, snapshot);
        }
        Ok(out)
    }

    fn extract_abi(
        &self,
        tree: &PublicHeaders,
        abi: Abi,
        view: View,
        candidates: &[String],
    ) -> Result<Snapshot, Error> {
        let unit = Unit {
            index: Index::new(&self.clang, false, false),
            public: &tree.public,
            abi,
            view,
        };
        let (included, skipped, tu) = headers::select(&unit, candidates)?;
        let mut snapshot = layout::walk(&tu, &tree.public);
        let found = macros::object_like_macros(&tu, &tree.public);
        drop(tu);
        macros::evaluate(&unit, &included, &found, &mut snapshot)?;
        snapshot.headers = included;
        snapshot.skipped = skipped;
        Ok(snapshot)
    }
}

/// How the headers are compiled: as the tools see them, or as a guest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// With `__XEN_TOOLS__` defined: everything, at the tree's latest interface version
    /// (`xen-compat.h` forces it for the tools).
    Tools,
    /// Without `__XEN_TOOLS__`, as a guest built against these headers: tools-only parts
    /// are left out, and `__XEN_INTERFACE_VERSION__` is the given value (a guest that
    /// names none gets the tree's latest here, not Xen's legacy default of 0).
    Guest(Option<i128>),
}

/// One ABI's compilation settings for one public folder.
pub(crate) struct Unit<'c> {
    index: Index<'c>,
    public: &'c Path,
    abi: Abi,
    view: View,
}

impl<'c> Unit<'c> {
    /// The path of the generated main file (it exists only in memory).
    fn main_file(&self) -> PathBuf {
        self.public.join("__xen_abi_main__.c")
    }

    /// Compiles `headers` (relative to the public folder) followed by `extra` source text.
    pub(crate) fn parse(
        &self,
        headers: &[String],
        extra: &str,
    ) -> Result<TranslationUnit<'_>, Error> {
        // The public headers expect the environment to provide the fixed-width types.
        let mut source = String::from("#include <stdint.h>\n#include <stddef.h>\n");
        for h in headers {
            source.push_str(&format!("#include \"{}\"\n", self.public.join(h).display()));
        }
        source.push_str(extra);
        let main = self.main_file();
        let mut args = vec![
            "-x".to_string(),
            "c".to_string(),
            "-std=gnu11".to_string(),
            format!("--target={}", self.abi.target()),
            "-ffreestanding".to_string(),
            "-w".to_string(),
            "-ferror-limit=0".to_string(),
        ];
        match self.view {
            View::Tools => args.push("-D__XEN_TOOLS__".to_string()),
            View::Guest(Some(version)) => {
                args.push(format!("-D__XEN_INTERFACE_VERSION__={version:#010x}"))
            }
            View::Guest(None) => {}
        }
        self.index
            .parser(&main)
            .arguments(&args)
            .unsaved(&[Unsaved::new(&main, source)])
            .detailed_preprocessing_record(true)
            .skip_function_bodies(true)
            .parse()
            .map_err(|e| Error::Parse {
                path: self.public.to_path_buf(),
                abi: self.abi,
                reason: e.to_string(),
            })
    }
}

/// The header (relative to `public`) in which an entity or diagnostic lies, if it lies in
/// the public folder.
pub(crate) fn header_of(
    location: Option<clang::source::SourceLocation<'_>>,
    public: &Path,
) -> Option<String> {
    let file = location?.get_file_location().file?;
    let path = file.get_path();
    let rel = normalize(path.strip_prefix(public).ok()?);
    if rel.starts_with("__xen_abi_main__") {
        None
    } else {
        Some(rel)
    }
}

/// Resolves `.` and `..` in a relative path without touching the file system
/// (`hvm/../xen.h` becomes `xen.h`).
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::path::Path;

    #[test]
    fn normalizes_parent_components() {
        assert_eq!(normalize(Path::new("hvm/../xen.h")), "xen.h");
        assert_eq!(
            normalize(Path::new("arch-x86/hvm/../../io/ring.h")),
            "io/ring.h"
        );
        assert_eq!(normalize(Path::new("./features.h")), "features.h");
    }
}
