// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Header ABI diff of two Xen trees.
//!
//! The facts come from the compiler, never from reading header text: libclang parses the
//! public headers for each ABI (`x86_32`, `x86_64`, freestanding) and answers for every
//! struct and union its size, alignment and member offsets, for every enum its constants,
//! for every typedef its type, and evaluates every object-like integer macro of the public
//! headers for that ABI. [`diff`] classifies the differences between two trees,
//! [`invariants`] checks the rules one tree must obey on its own, and [`report`] renders
//! both as a table or as JSON.

pub mod abi;
pub mod cli;
pub mod compare;
pub mod diff;
pub mod error;
pub mod extract;
pub mod history;
pub mod invariants;
pub mod model;
pub mod reference;
pub mod report;
pub mod tree;

pub use abi::Abi;
pub use error::Error;
