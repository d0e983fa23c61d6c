#!/usr/bin/env python3
"""Makes the small committed test inputs from the real captures in ../shared/data.

  tests/data/slices/*.bin   the first chunks of each real capture, each chunk cut to its first
                            records (the header's window rewritten to match): real bytes, small.
  tests/data/broken/*.bin   damaged variants of one slice, one kind of damage each, and
                            broken/expect.txt: name, error code, byte offset of the damage and
                            how many records (CPU_CHANGE included, file order) come before it.

Deterministic: running it again gives the same bytes. Run from anywhere:
  python3 tests/data/generate.py [--shared ../shared/data]
"""
import argparse
import os
import struct

CPU_CHANGE_HEADER = 0x2001F003
CHUNKS = 4             # chunks kept per capture
RECORDS_PER_CHUNK = 40  # records kept per chunk

CAPTURES = {
    "qemu-all": "xen-4.17-qemu/trace-all.bin",
    "qemu-sched": "xen-4.17-qemu/trace-sched.bin",
    "guests-sched": "xen-4.17-qemu-guests/trace-sched.bin",
}


def record_size(header):
    return 4 + (8 if header & 0x80000000 else 0) + 4 * ((header >> 28) & 7)


def chunks(data):
    off = 0
    while off + 12 <= len(data):
        head, cpu, window = struct.unpack_from("<III", data, off)
        assert head == CPU_CHANGE_HEADER
        yield cpu, data[off + 12:off + 12 + window]
        off += 12 + window


def first_records(window, count):
    off = 0
    for _ in range(count):
        if off + 4 > len(window):
            break
        off += record_size(struct.unpack_from("<I", window, off)[0])
    return window[:off]


def chunk_bytes(cpu, window, declared=None):
    return struct.pack("<III", CPU_CHANGE_HEADER, cpu,
                       len(window) if declared is None else declared) + window


def make_slice(capture):
    out = b""
    for n, (cpu, window) in enumerate(chunks(capture)):
        if n == CHUNKS:
            break
        out += chunk_bytes(cpu, first_records(window, RECORDS_PER_CHUNK))
    return out


def record_offsets(data):
    """(offset of every record in file order, CPU_CHANGE headers included)."""
    offsets = []
    off = 0
    while off + 12 <= len(data):
        window = struct.unpack_from("<I", data, off + 8)[0]
        offsets.append(off)
        pos = off + 12
        end = off + 12 + window
        while pos < end:
            offsets.append(pos)
            pos += record_size(struct.unpack_from("<I", data, pos)[0])
        off = end
    return offsets


def make_broken(good):
    """Returns {name: (bytes, code, offset, records_delivered)}.

    records_delivered counts the whole records a reader delivers in file order, CPU_CHANGE
    included: all before the damage, and for a record cut short inside a chunk also the good
    chunks after it."""
    offs = record_offsets(good)
    chunk_starts = [o for o in offs if struct.unpack_from("<I", good, o)[0] == CPU_CHANGE_HEADER]
    third = chunk_starts[2]
    cases = {}
    # The file ends 6 bytes into a record of the third chunk: that chunk's window runs past the end.
    rec = [o for o in offs if o > third + 12][5]
    cases["truncated-mid-record"] = (good[:rec + 6], "truncated", third, offs.index(rec))
    # The file ends 7 bytes into the third chunk's CPU_CHANGE header.
    cases["truncated-cpu-change"] = (good[:third + 7], "truncated", third, offs.index(third))
    # Bytes that are not a chunk header after two good chunks.
    garbage = bytes((i * 37 + 11) & 0xFF for i in range(64))
    cases["garbage"] = (good[:third] + garbage, "corrupt", third, offs.index(third))
    cases["empty"] = (b"", "truncated", 0, 0)
    # A header announcing far more bytes than the file holds, with 3 whole records after it.
    cpu, window = list(chunks(good))[2]
    part = first_records(window, 3)
    cases["window-larger-than-file"] = (
        good[:third] + chunk_bytes(cpu, part, declared=1 << 20), "truncated", third,
        offs.index(third) + 1 + 3)
    # A CPU id no host has.
    cases["bogus-cpu"] = (good[:third] + chunk_bytes(0x7FFFFFFF, part), "corrupt", third,
                          offs.index(third))
    # A chunk whose window ends 8 bytes into a record, followed by a good chunk.
    whole = first_records(window, 3)
    cut = first_records(window, 4)[:len(whole) + 8]
    cases["record-cut-in-chunk"] = (
        good[:third] + chunk_bytes(cpu, cut) + good[chunk_starts[3]:], "truncated",
        third + 12 + len(whole), offs.index(third) + 1 + 3 + len(offs) - offs.index(chunk_starts[3]))
    # Pure noise from the first byte.
    cases["noise-only"] = (bytes((i * 73 + 5) & 0xFF for i in range(256)), "corrupt", 0, 0)
    return cases


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.path.join(here, "..", "..", "..", "shared", "data"))
    args = parser.parse_args()
    slices = {}
    for name, rel in CAPTURES.items():
        with open(os.path.join(args.shared, rel), "rb") as f:
            slices[name] = make_slice(f.read())
        with open(os.path.join(here, "slices", name + ".bin"), "wb") as f:
            f.write(slices[name])
    lines = ["# name code offset records_delivered (file order, CPU_CHANGE included)"]
    for name, (data, code, offset, before) in make_broken(slices["qemu-sched"]).items():
        with open(os.path.join(here, "broken", name + ".bin"), "wb") as f:
            f.write(data)
        lines.append(f"{name} {code} {offset} {before}")
    with open(os.path.join(here, "broken", "expect.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
