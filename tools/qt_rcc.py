"""Read Qt binary resource files (``.rcc``, as written by ``rcc --binary``), standard library only.

The layout (Qt's ``rcc.cpp`` writes it, ``qresource.cpp`` reads it), all integers big-endian:

* header: ``b"qres"``, version (u32, 1-3), tree offset, data offset, names offset (u32 each), and
  from version 3 on the overall flags (u32);
* tree: fixed-size nodes, 14 bytes each (22 from version 2, which appends a u64 modification
  time), node 0 being the root directory. A node is name offset (u32), flags (u16), then either
  child count (u32) and index of the first child (u32) for a directory (flag 0x02), or territory
  (u16), language (u16) and data offset (u32) for a file;
* names: u16 length, u32 hash, then the name as UTF-16BE;
* data: u32 size, then the bytes; zlib-compressed (flag 0x01) data starts with the uncompressed
  size (u32, as ``qCompress`` writes it) before the zlib stream; zstd-compressed (flag 0x04) data
  is one zstd frame (needs the ``zstandard`` package, imported only when such a file is read).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x01, 0x02, 0x04


class RccError(ValueError):
    """The bytes are not a Qt resource file this reader understands."""


class RccFile:
    """One parsed ``.rcc`` file: ``files()`` walks it as (path, flags, raw bytes) triples."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 20 or blob[:4] != b"qres":
            raise RccError("not a Qt resource file (no 'qres' header)")
        self.blob = blob
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", blob, 4)
        if not 1 <= self.version <= 3:
            raise RccError(f"rcc version {self.version} is not 1, 2 or 3")
        self.node_size = 14 if self.version == 1 else 22

    @classmethod
    def open(cls, path: str | Path) -> RccFile:
        return cls(Path(path).read_bytes())

    def _name(self, offset: int) -> str:
        at = self.names + offset
        (length,) = struct.unpack_from(">H", self.blob, at)
        return self.blob[at + 6 : at + 6 + 2 * length].decode("utf-16-be")

    def _node(self, index: int) -> tuple[str, int, int, int]:
        """(name, flags, a, b): a, b = child count, first child (directory) or 0, data offset."""
        at = self.tree + index * self.node_size
        if at + 14 > len(self.blob):
            raise RccError(f"tree node {index} lies past the end of the file")
        name_off, flags = struct.unpack_from(">IH", self.blob, at)
        name = "" if index == 0 else self._name(name_off)
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", self.blob, at + 6)
            return name, flags, count, first
        (data_off,) = struct.unpack_from(">I", self.blob, at + 10)
        return name, flags, 0, data_off

    def read(self, flags: int, data_offset: int) -> bytes:
        """The file's bytes, decompressed."""
        at = self.data + data_offset
        (size,) = struct.unpack_from(">I", self.blob, at)
        raw = self.blob[at + 4 : at + 4 + size]
        if len(raw) != size:
            raise RccError(f"data at {data_offset} is truncated")
        if flags & COMPRESSED:
            return zlib.decompress(raw[4:])  # raw[:4] is qCompress's uncompressed-size prefix
        if flags & COMPRESSED_ZSTD:
            import zstandard  # only rcc files built with zstd need it

            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        return raw

    def entries(self) -> Iterator[tuple[str, int, int]]:
        """(path, flags, data offset) of every file, depth first in tree order."""
        stack = [(0, "")]
        seen = set()
        while stack:
            index, prefix = stack.pop()
            if index in seen:
                raise RccError(f"tree node {index} is reached twice (a loop)")
            seen.add(index)
            name, flags, a, b = self._node(index)
            path = f"{prefix}/{name}" if index else ""
            if flags & DIRECTORY:
                stack.extend((b + i, path) for i in reversed(range(a)))
            else:
                yield path.lstrip("/"), flags, b

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(path, decompressed bytes) of every file."""
        for path, flags, offset in self.entries():
            yield path, self.read(flags, offset)


def build_rcc(files: dict[str, bytes], version: int = 3, compress: set[str] | None = None,
              zstd: set[str] | None = None) -> bytes:
    """A minimal ``.rcc`` holding ``files`` (path -> bytes); the paths in ``compress`` are zlib'ed,
    those in ``zstd`` zstd'ed (needs ``zstandard``).

    Written for tests, in the layout ``rcc --binary`` uses; children are stored in name order
    (Qt sorts them by name hash for lookup, which a walk does not need).
    """
    compress, zstd = compress or set(), zstd or set()
    tree: dict[str, dict | bytes] = {}
    for path, payload in files.items():
        parts = path.split("/")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = payload
    names, name_at = bytearray(), {}
    data = bytearray()
    nodes: list[tuple[int, int, int, int]] = []  # (name offset, flags, a, b)

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), zlib.crc32(encoded)) + encoded)
        return name_at[name]

    # Breadth first, as rcc does: a directory's children are consecutive nodes.
    nodes.append((0, DIRECTORY, 0, 0))
    queue = [(0, tree, "")]
    while queue:
        index, directory, prefix = queue.pop(0)
        first = len(nodes)
        children = sorted(directory.items())
        nodes[index] = (nodes[index][0], DIRECTORY, len(children), first)
        for name, child in children:
            path = f"{prefix}{name}"
            if isinstance(child, dict):
                queue.append((len(nodes), child, path + "/"))
                nodes.append((name_offset(name), DIRECTORY, 0, 0))
            else:
                flags = 0
                payload = child
                if path in compress:
                    flags = COMPRESSED
                    payload = struct.pack(">I", len(child)) + zlib.compress(child)
                elif path in zstd:
                    import zstandard

                    flags = COMPRESSED_ZSTD
                    payload = zstandard.ZstdCompressor().compress(child)
                nodes.append((name_offset(name), flags, 0, len(data)))
                data.extend(struct.pack(">I", len(payload)) + payload)
    tree_bytes = bytearray()
    for name_off, flags, a, b in nodes:
        if flags & DIRECTORY:
            tree_bytes.extend(struct.pack(">IHII", name_off, flags, a, b))
        else:
            tree_bytes.extend(struct.pack(">IHHHI", name_off, flags, 0, 1, b))
        if version >= 2:
            tree_bytes.extend(struct.pack(">Q", 0))
    header_size = 24 if version >= 3 else 20
    tree_at = header_size
    data_at = tree_at + len(tree_bytes)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">4I", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + bytes(tree_bytes) + bytes(data) + bytes(names)
