// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The ABIs the checker compares.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One guest ABI: a compiler target whose layouts are extracted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Abi {
    /// 32-bit x86 (`-m32`, `i386-linux-gnu`).
    #[serde(rename = "x86_32")]
    X86_32,
    /// 64-bit x86 (`-m64`, `x86_64-linux-gnu`).
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Abi {
    /// Every ABI the checker knows, in report order.
    pub const ALL: [Abi; 2] = [Abi::X86_32, Abi::X86_64];

    /// The clang target triple for this ABI.
    pub fn target(self) -> &'static str {
        match self {
            Abi::X86_32 => "i386-linux-gnu",
            Abi::X86_64 => "x86_64-linux-gnu",
        }
    }

    /// The name used in reports and in `reference.size` (`x86_32`, `x86_64`).
    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_32 => "x86_32",
            Abi::X86_64 => "x86_64",
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
