// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Little-endian integers in byte buffers: the one set of readers and
//! writers of the crate (C structures are encoded and decoded field by
//! field with these, never by reinterpreting memory).

/// The little-endian unsigned integer of `size` (at most 8) bytes at `at`,
/// zero-extended; `None` if it does not lie within `b`.
pub(crate) fn uint(b: &[u8], at: usize, size: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(size)?).filter(|s| s.len() <= 8)?;
    Some(s.iter().rev().fold(0, |v, &x| (v << 8) | x as u64))
}

/// Stores the low `size` (at most 8) bytes of `v` at `at`; `None` (and
/// nothing written) if they do not lie within `b`.
pub(crate) fn put_uint(b: &mut [u8], at: usize, size: usize, v: u64) -> Option<()> {
    let s = b
        .get_mut(at..at.checked_add(size)?)
        .filter(|s| s.len() <= 8)?;
    s.copy_from_slice(&v.to_le_bytes()[..size]);
    Some(())
}

/// A guest word of `w` bytes (4 or 8) at `at`.
#[inline(always)]
pub(crate) fn word(b: &[u8], at: usize, w: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(w)?)?;
    Some(match w {
        8 => u64::from_le_bytes(s.try_into().ok()?),
        4 => u32::from_le_bytes(s.try_into().ok()?) as u64,
        _ => return None,
    })
}

/// The `u16` at `at`, 0 past the end (callers check lengths first).
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    uint(b, at, 2).unwrap_or(0) as u16
}

/// The `u32` at `at`, 0 past the end (callers check lengths first).
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    word(b, at, 4).unwrap_or(0) as u32
}

/// The `u64` at `at`, 0 past the end (callers check lengths first).
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    word(b, at, 8).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_and_writers_stay_in_bounds() {
        let mut b = [0u8; 8];
        assert_eq!(put_uint(&mut b, 2, 4, 0x1122_3344_5566), Some(()));
        assert_eq!(uint(&b, 2, 4), Some(0x3344_5566));
        assert_eq!(uint(&b, 6, 4), None);
        assert_eq!(uint(&b, usize::MAX, 2), None);
        assert_eq!(put_uint(&mut b, 7, 2, 1), None);
        assert_eq!(word(&b, 0, 8), Some(0x3344_5566_0000));
        assert_eq!(word(&b, 4, 4), Some(0x3344));
        assert_eq!(word(&b, 4, 8), None);
        assert_eq!(word(&b, 0, 2), None);
        assert_eq!(
            (u16_at(&b, 2), u32_at(&b, 7), u64_at(&b, 1)),
            (0x5566, 0, 0)
        );
    }
}
