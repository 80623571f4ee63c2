#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Build a test-guest image (docs/guest.md, "Image format") from a readable
description.

Usage: mkimage.py DESCRIPTION OUTPUT

The description, one statement a line ('#' starts a comment):

  width 64|32                      the guest width (first statement)
  page NAME [COUNT]                COUNT (default 1) zero-filled pages; the
                                   first is NAME, the next NAME+1, ...
  u64 PAGE[I] = EXPR               write word I (8 bytes) of PAGE
  u64 PAGE[I..J] = EXPR            words I..J-1; EXPR may use +i (the word's
                                   position in the range, from 0)
  u32 PAGE[I] = EXPR               the same with 4-byte words
  set FIELD = EXPR                 publish a shared_info field over the honest
                                   value: tree_root max_pfn p2m_vaddr
                                   p2m_generation p2m_cr3

  PAGE  NAME or NAME+K
  EXPR  TERM [<< 12] [| NUMBER]    << 12: the frame number as an address
        extcr3(TERM) [| NUMBER]    32-bit extended cr3 of the frame number
  TERM  NUMBER[+i[*S]]             a number (frame, value)
        page(PAGE[+i[*S]])         the machine frame holding an image page
        pfn(N[+i[*S]])             the machine frame of the guest's pfn N
        list(N[+i[*S]])            frame of page N of the guest's honest list
        cr3                        frame of the guest's own top page table
        option(N)                  the frame given as frameN= (N 0..9) on the
                                   guest's command line (xl extra=)
  NUMBER  decimal, 0x hex, or ~0 (all ones)
"""
import re
import struct
import sys

MAGIC = b"VP2MIMG1"
VERSION = 1
FIELD_PAGE = 0xFFFFFFFF
FIELDS = ["tree_root", "max_pfn", "p2m_vaddr", "p2m_generation", "p2m_cr3"]
KINDS = {"number": 0, "page": 1, "pfn": 2, "cr3": 3, "list": 4, "option": 5}
MAX_PAGES = 256
MAX_RECORDS = 4096
U64 = (1 << 64) - 1


class DescError(Exception):
    pass


def number(text):
    text = text.strip()
    if text == "~0":
        return U64
    try:
        v = int(text, 0)
    except ValueError:
        raise DescError(f"not a number: {text!r}") from None
    if not 0 <= v <= U64:
        raise DescError(f"number out of 64-bit range: {text}")
    return v


class Image:
    def __init__(self):
        self.width = None
        self.pages = {}       # name -> first index
        self.npages = 0
        self.records = []
        self.contents = {}

    def page_index(self, ref):
        m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\+\s*(\d+))?\s*", ref)
        if not m or m.group(1) not in self.pages:
            raise DescError(f"unknown page {ref.strip()!r}")
        first, count = self.pages[m.group(1)]
        k = int(m.group(2) or 0)
        if k >= count:
            raise DescError(f"{ref.strip()}: page {m.group(1)} has only {count} page(s)")
        return first + k

    def term(self, text):
        """-> (kind, arg, step)"""
        text = text.strip()
        step = 0
        m = re.fullmatch(r"(.*?)\s*\+\s*i(?:\s*\*\s*(\w+))?", text)
        if m and not text.startswith(("page(", "pfn(", "list(", "option(")):
            text, step = m.group(1), number(m.group(2) or "1")
        if text == "cr3":
            return KINDS["cr3"], 0, 0
        m = re.fullmatch(r"option\(\s*(\d)\s*\)", text)
        if m:
            return KINDS["option"], int(m.group(1)), 0
        m = re.fullmatch(r"(page|pfn|list)\((.*)\)", text)
        if m:
            inner = m.group(2)
            mi = re.fullmatch(r"(.*?)\s*\+\s*i(?:\s*\*\s*(\w+))?\s*", inner)
            if mi:
                inner, step = mi.group(1), number(mi.group(2) or "1")
            if m.group(1) == "page":
                return KINDS["page"], self.page_index(inner), step
            return KINDS[m.group(1)], number(inner), step
        return KINDS["number"], number(text), step

    def expr(self, text):
        """-> (kind, format, arg, step, or)"""
        text = text.strip()
        or_bits = 0
        m = re.fullmatch(r"(.*?)\s*\|\s*([^|]+)", text)
        if m:
            text, or_bits = m.group(1).strip(), number(m.group(2))
        fmt = 0
        m = re.fullmatch(r"extcr3\((.*)\)", text)
        if m:
            text, fmt = m.group(1), 2
        else:
            m = re.fullmatch(r"(.*?)\s*<<\s*12", text)
            if m:
                text, fmt = m.group(1), 1
        kind, arg, step = self.term(text)
        return kind, fmt, arg, step, or_bits

    def statement(self, line):
        words = line.split()
        if words[0] == "width":
            if len(words) != 2 or words[1] not in ("64", "32") or self.width:
                raise DescError("width takes 64 or 32, once")
            self.width = int(words[1]) // 8
            return
        if self.width is None:
            raise DescError("the first statement must be 'width 64' or 'width 32'")
        if words[0] == "page":
            if len(words) not in (2, 3) or words[1] in self.pages:
                raise DescError("page NAME [COUNT], each NAME once")
            count = number(words[2]) if len(words) == 3 else 1
            if count < 1 or self.npages + count > MAX_PAGES:
                raise DescError(f"at most {MAX_PAGES} pages in all")
            self.pages[words[1]] = (self.npages, count)
            self.npages += count
            return
        if words[0] == "set":
            m = re.fullmatch(r"set\s+(\w+)\s*=\s*(.+)", line)
            if not m or m.group(1) not in FIELDS:
                raise DescError(f"set FIELD = EXPR, FIELD one of {' '.join(FIELDS)}")
            kind, fmt, arg, step, or_bits = self.expr(m.group(2))
            self.records.append((FIELD_PAGE, FIELDS.index(m.group(1)), 1, self.width,
                                 kind, fmt, arg, step, or_bits))
            return
        m = re.fullmatch(r"(u64|u32)\s+([^\[]+)\[\s*(\w+)\s*(?:\.\.\s*(\w+)\s*)?\]\s*=\s*(.+)", line)
        if not m:
            raise DescError(f"not a statement: {line!r}")
        width = 8 if m.group(1) == "u64" else 4
        page = self.page_index(m.group(2))
        first = number(m.group(3))
        end = number(m.group(4)) if m.group(4) else first + 1
        if not first < end <= 4096 // width:
            raise DescError(f"word range {first}..{end} outside a page of {4096 // width} words")
        kind, fmt, arg, step, or_bits = self.expr(m.group(5))
        self.records.append((page, first, end - first, width, kind, fmt, arg, step, or_bits))

    def encode(self):
        if self.width is None:
            raise DescError("empty description")
        if len(self.records) > MAX_RECORDS:
            raise DescError(f"at most {MAX_RECORDS} statements")
        out = bytearray(MAGIC)
        out += struct.pack("<IIIIII", VERSION, self.width, self.npages, len(self.records), 0, 0)
        for r in self.records:
            out += struct.pack("<IIIBBBBQQQ", r[0], r[1], r[2], r[3], r[4], r[5], 0,
                               r[6], r[7], r[8])
        out += bytes(-len(out) % 4096)
        out += bytes(4096 * self.npages)
        return bytes(out)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    img = Image()
    try:
        with open(argv[1]) as f:
            for n, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    img.statement(line)
                except DescError as e:
                    raise DescError(f"{argv[1]}:{n}: {e}") from None
        data = img.encode()
    except (OSError, DescError) as e:
        print(f"mkimage: {e}", file=sys.stderr)
        return 1
    with open(argv[2], "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
