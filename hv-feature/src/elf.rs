// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the two dump readers ([`crate::dump_core`] and [`crate::vmcore`])
//! share of the ELF format: both read little-endian ELF64 `ET_CORE` files.

use crate::le::{u16_at, u32_at};

/// Bytes of an ELF64 header.
pub(crate) const EHDR_SIZE: usize = 64;
/// `ET_CORE`.
pub(crate) const ET_CORE: u16 = 4;
/// `EM_386`.
pub(crate) const EM_386: u16 = 3;
/// `EM_X86_64`.
pub(crate) const EM_X86_64: u16 = 62;

/// Checks that `eh` starts a little-endian ELF64 core file and returns its
/// `e_machine`, unchecked. On failure: the field that is wrong (saying what
/// it must be; `class` is the text for `EI_CLASS`) and its value.
pub(crate) fn core_machine(
    eh: &[u8; EHDR_SIZE],
    class: &'static str,
) -> Result<u16, (&'static str, u64)> {
    if eh[..4] != *b"\x7fELF" {
        return Err(("ELF magic", u32_at(eh, 0) as u64));
    }
    if eh[4] != 2 {
        return Err((class, eh[4] as u64));
    }
    if eh[5] != 1 {
        return Err(("EI_DATA (must be little-endian = 1)", eh[5] as u64));
    }
    let e_type = u16_at(eh, 16);
    if e_type != ET_CORE {
        return Err(("e_type (must be ET_CORE = 4)", e_type as u64));
    }
    Ok(u16_at(eh, 18))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrong_field_is_named_with_its_value() {
        let mut eh = [0u8; EHDR_SIZE];
        eh[..6].copy_from_slice(b"\x7fELF\x02\x01");
        eh[16..20].copy_from_slice(&[4, 0, 62, 0]);
        assert_eq!(core_machine(&eh, "class"), Ok(EM_X86_64));
        let wrong = |at: usize, v: u8| {
            let mut e = eh;
            e[at] = v;
            core_machine(&e, "class").unwrap_err()
        };
        assert_eq!(wrong(0, 0).0, "ELF magic");
        assert_eq!(wrong(4, 1), ("class", 1));
        assert_eq!(wrong(5, 2).1, 2);
        assert_eq!(wrong(16, 2), ("e_type (must be ET_CORE = 4)", 2));
    }
}
