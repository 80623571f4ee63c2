// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Locating the public headers of a Xen tree and choosing which headers to compile.

use crate::error::Error;
use std::path::{Path, PathBuf};

/// A folder of Xen public headers (`xen/include/public`) and, when known, its whole tree.
#[derive(Debug, Clone)]
pub struct PublicHeaders {
    /// The `xen/include/public` folder (canonical path).
    pub public: PathBuf,
    /// The top of the Xen tree, when the argument was a whole tree.
    pub tree: Option<PathBuf>,
}

impl PublicHeaders {
    /// Finds the public headers of `path`: either a Xen tree (with
    /// `xen/include/public/xen.h`) or a public headers folder itself (with `xen.h`).
    /// `role` names the argument in the error (`OLD`, `NEW`, `TREE`).
    pub fn locate(path: &Path, role: &'static str) -> Result<Self, Error> {
        let not_a_tree = || Error::NotATree {
            role,
            path: path.to_path_buf(),
        };
        let (public, tree) = if path.join("xen/include/public/xen.h").is_file() {
            (path.join("xen/include/public"), Some(path.to_path_buf()))
        } else if path.join("xen.h").is_file() {
            (path.to_path_buf(), None)
        } else {
            return Err(not_a_tree());
        };
        let public = public.canonicalize().map_err(|source| Error::Io {
            path: public.clone(),
            source,
        })?;
        Ok(PublicHeaders { public, tree })
    }

    /// `tools/include/xen-foreign/reference.size` of the tree, if the argument was a tree.
    pub fn reference_size(&self) -> Option<PathBuf> {
        self.tree
            .as_ref()
            .map(|t| t.join("tools/include/xen-foreign/reference.size"))
    }

    /// The headers to compile for the x86 ABIs, relative to the public folder and sorted:
    /// every `*.h` at the top and in `arch-x86/`, `arch-x86/hvm/`, `hvm/`, `io/` and `xsm/`.
    /// Headers of other architectures (`arch-arm*`, `arch-ppc.h`, `arch-riscv.h`) are left out. Whether each one compiles is decided by the compiler.
    pub fn candidate_headers(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for dir in ["", "arch-x86", "arch-x86/hvm", "hvm", "io", "xsm"] {
            let full = self.public.join(dir);
            if !full.is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(&full).map_err(|source| Error::Io {
                path: full.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| Error::Io {
                    path: full.clone(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // Other architectures' headers (arch-arm*, arch-ppc.h, arch-riscv.h, ...).
                if !name.ends_with(".h")
                    || name.starts_with("arch-") && !name.starts_with("arch-x86")
                {
                    continue;
                }
                if !entry.path().is_file() {
                    continue;
                }
                out.push(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        out.sort();
        Ok(out)
    }
}
