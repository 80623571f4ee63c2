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
}

impl Extractor {
    /// Loads libclang. Only one extractor can exist at a time in a process.
    pub fn new() -> Result<Self, Error> {
        Ok(Extractor {
            clang: Clang::new().map_err(Error::Libclang)?,
        })
    }

    /// Extracts one snapshot per ABI from the public headers of a tree.
    pub fn extract(&self, tree: &PublicHeaders) -> Result<BTreeMap<Abi, Snapshot>, Error> {
        let candidates = tree.candidate_headers()?;
        let mut out = BTreeMap::new();
        for abi in Abi::ALL {
            out.insert(abi, self.extract_abi(tree, abi, &candidates)?);
        }
        Ok(out)
    }

    fn extract_abi(
        &self,
        tree: &PublicHeaders,
        abi: Abi,
        candidates: &[String],
    ) -> Result<Snapshot, Error> {
        let unit = Unit {
            index: Index::new(&self.clang, false, false),
            public: &tree.public,
            abi,
        };
        let (included, skipped) = headers::select(&unit, candidates)?;
        let tu = unit.parse(&included, "")?;
        let mut snapshot = layout::walk(&tu, &tree.public);
        let found = macros::object_like_macros(&tu, &tree.public);
        macros::evaluate(&unit, &included, &found, &mut snapshot)?;
        snapshot.headers = included;
        snapshot.skipped = skipped;
        Ok(snapshot)
    }
}

/// One ABI's compilation settings for one public folder.
pub(crate) struct Unit<'c> {
    index: Index<'c>,
    public: &'c Path,
    abi: Abi,
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
        let args = [
            "-x".to_string(),
            "c".to_string(),
            "-std=gnu11".to_string(),
            format!("--target={}", self.abi.target()),
            "-ffreestanding".to_string(),
            "-D__XEN_TOOLS__".to_string(),
            "-w".to_string(),
            "-ferror-limit=0".to_string(),
        ];
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
