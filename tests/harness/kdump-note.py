#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""The ELF notes of a Xen host crash dump, for the kdump checks.

  kdump-note.py show FILE    one line per note: NAME TYPE DESCSZ, and for the
                             notes the checks read, their fields as key=value
  kdump-note.py strip FILE   remove every XEN_ELFNOTE_CRASH_DOM0_P2M note from
                             FILE, in place (run it on a copy): the notes after
                             it move up, the PT_NOTE segment shrinks

The dump is untrusted input: every offset and size is checked against the
file before use. Exit status: 0 done; 1 the file is not a readable ELF64
core or (strip) has no such note; 2 usage.
"""
import struct
import sys

PT_NOTE = 4
XEN_ELFNOTE_CRASH_INFO = 0x1000001
XEN_ELFNOTE_CRASH_DOM0_P2M = 0x1000003
# Bounds for a dump's headers: far above what Linux's /proc/vmcore writes.
MAX_PHNUM = 4096
MAX_NOTES_BYTES = 16 << 20


class DumpError(Exception):
    """The dump's data is not what an ELF64 core must hold."""


def align4(n):
    return (n + 3) & ~3


def note_segments(f, size):
    """(index of the program header, its file offset, p_offset, p_filesz) of each PT_NOTE."""
    f.seek(0)
    eh = f.read(64)
    if len(eh) < 64 or eh[:4] != b"\x7fELF":
        raise DumpError("not an ELF file (no \\x7fELF magic)")
    if eh[4] != 2 or eh[5] != 1:
        raise DumpError(f"not a little-endian ELF64 file (class {eh[4]}, data {eh[5]})")
    phoff, = struct.unpack_from("<Q", eh, 32)
    phentsize, phnum = struct.unpack_from("<HH", eh, 54)
    if phentsize != 56:
        raise DumpError(f"e_phentsize {phentsize}, an ELF64 program header is 56 bytes")
    if phnum == 0 or phnum > MAX_PHNUM:
        raise DumpError(f"e_phnum {phnum} out of range 1..{MAX_PHNUM}")
    if phoff > size or phnum * 56 > size - phoff:
        raise DumpError(f"program headers at {phoff:#x} ({phnum}) run past the end of the file")
    segs = []
    for i in range(phnum):
        f.seek(phoff + i * 56)
        ph = f.read(56)
        p_type, = struct.unpack_from("<I", ph, 0)
        p_offset, = struct.unpack_from("<Q", ph, 8)
        p_filesz, = struct.unpack_from("<Q", ph, 32)
        if p_type != PT_NOTE:
            continue
        if p_filesz > MAX_NOTES_BYTES:
            raise DumpError(f"PT_NOTE {i}: p_filesz {p_filesz:#x} above {MAX_NOTES_BYTES:#x}")
        if p_offset > size or p_filesz > size - p_offset:
            raise DumpError(f"PT_NOTE {i}: {p_filesz:#x} bytes at {p_offset:#x} run past the end of the file")
        segs.append((i, phoff + i * 56, p_offset, p_filesz))
    return segs


def parse_notes(data, seg):
    """[(start, end, name, type, desc)] of the notes in one PT_NOTE's bytes."""
    notes = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            if any(data[pos:]):
                raise DumpError(f"PT_NOTE {seg}: {len(data) - pos} stray bytes at the end")
            break
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        if namesz == 0 and descsz == 0 and ntype == 0:
            break  # zero padding after the last note
        name_end = pos + 12 + namesz
        desc_start = pos + 12 + align4(namesz)
        end = desc_start + align4(descsz)
        if end > len(data):
            raise DumpError(f"PT_NOTE {seg}: note at {pos:#x} (namesz {namesz}, descsz {descsz}) "
                            f"runs past the segment ({len(data):#x} bytes)")
        name = data[pos + 12:name_end].rstrip(b"\0").decode("ascii", "replace")
        notes.append((pos, end, name, ntype, data[desc_start:desc_start + descsz]))
        pos = end
    return notes


def describe(name, ntype, desc):
    """The fields the checks read, as key=value words."""
    if name == "Xen" and ntype == XEN_ELFNOTE_CRASH_DOM0_P2M and len(desc) >= 48:
        ver, flags, max_pfn, fll, cr3, vaddr, gen = struct.unpack_from("<IIQQQQQ", desc)
        return (f"version={ver} flags={flags:#x} max_pfn={max_pfn:#x} "
                f"pfn_to_mfn_frame_list_list={fll:#x} p2m_cr3={cr3:#x} "
                f"p2m_vaddr={vaddr:#x} p2m_generation={gen}")
    if name == "Xen" and ntype == XEN_ELFNOTE_CRASH_INFO and len(desc) >= 16 and len(desc) % 8 == 0:
        # crash_xen_info_t: the last word is dom0's tree root, the one before
        # it xen_phys_start (what crash reads).
        words = struct.unpack(f"<{len(desc) // 8}Q", desc)
        return f"xen_phys_start={words[-2]:#x} dom0_pfn_to_mfn_frame_list_list={words[-1]:#x}"
    return ""


def show(path):
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        for seg, _, off, filesz in note_segments(f, size):
            f.seek(off)
            for _, _, name, ntype, desc in parse_notes(f.read(filesz), seg):
                print(f"{name} {ntype:#x} {len(desc)} {describe(name, ntype, desc)}".rstrip())


def strip(path):
    removed = 0
    with open(path, "r+b") as f:
        f.seek(0, 2)
        size = f.tell()
        for seg, ph_at, off, filesz in note_segments(f, size):
            f.seek(off)
            data = f.read(filesz)
            notes = parse_notes(data, seg)
            drop = [n for n in notes if n[2] == "Xen" and n[3] == XEN_ELFNOTE_CRASH_DOM0_P2M]
            if not drop:
                continue
            kept = b"".join(data[s:e] for s, e, name, ntype, _ in notes
                            if not (name == "Xen" and ntype == XEN_ELFNOTE_CRASH_DOM0_P2M))
            used = notes[-1][1]
            removed += len(drop)
            f.seek(off)
            f.write(kept + bytes(filesz - len(kept)))
            new_size = filesz - (used - len(kept))
            f.seek(ph_at + 32)
            f.write(struct.pack("<QQ", new_size, new_size))  # p_filesz, p_memsz
    if removed == 0:
        raise DumpError("no XEN_ELFNOTE_CRASH_DOM0_P2M note to strip (a pristine Xen's dump?)")
    print(f"kdump-note: removed {removed} XEN_ELFNOTE_CRASH_DOM0_P2M note(s) from {path}")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("show", "strip"):
        print("usage: kdump-note.py show|strip FILE", file=sys.stderr)
        return 2
    try:
        (show if argv[1] == "show" else strip)(argv[2])
    except DumpError as e:
        print(f"kdump-note: {argv[2]}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"kdump-note: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
