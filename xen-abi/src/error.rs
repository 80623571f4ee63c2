// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The errors that stop a run (exit status 2).

use std::path::PathBuf;

/// Why the checker could not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path given is neither a Xen tree nor a `xen/include/public` folder.
    #[error(
        "{role} ({path}) is not a Xen tree: no xen/include/public/xen.h and no xen.h in it; \
         pass the top of a Xen source tree or its xen/include/public folder"
    )]
    NotATree {
        /// Which argument it was (`OLD`, `NEW`, `TREE`).
        role: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// A directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// libclang could not be loaded.
    #[error(
        "cannot load libclang: {0}; install libclang-dev (or set LIBCLANG_PATH to its lib folder)"
    )]
    Libclang(String),
    /// libclang failed to parse the generated translation unit at all.
    #[error("libclang could not parse the public headers of {path} for {abi}: {reason}")]
    Parse {
        /// The public headers folder.
        path: PathBuf,
        /// The ABI being parsed.
        abi: crate::Abi,
        /// What libclang said.
        reason: String,
    },
    /// No header of the tree compiled for an ABI.
    #[error(
        "no public header of {path} compiles for {abi} (first error: {first_error}); \
         check that clang can target {abi} with -ffreestanding"
    )]
    NothingCompiles {
        /// The public headers folder.
        path: PathBuf,
        /// The ABI being parsed.
        abi: crate::Abi,
        /// The first compiler error seen.
        first_error: String,
    },
    /// `reference.size` is missing or unreadable in a `check` run.
    #[error("{path}: {reason}")]
    Reference {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The command line was wrong.
    #[error("{0}\n{usage}", usage = crate::cli::USAGE)]
    Usage(String),
}
