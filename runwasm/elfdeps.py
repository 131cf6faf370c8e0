"""The shared objects an ELF program loads, found as glibc's dynamic loader finds them.

Host side, standard library only: read at `create` to know which host directories an
engine's launcher view needs. Only the few bytes the loader itself reads are read (the
ELF header, the program headers, the dynamic section and the strings it names), never
a whole library: libLLVM is 100 MB.

The search for a DT_NEEDED name without a slash follows ld.so(8): the DT_RPATH of the
object and of the objects that loaded it (unless the object has a DT_RUNPATH), then
LD_LIBRARY_PATH, then the object's DT_RUNPATH, then /etc/ld.so.cache, then the default
directories. `$ORIGIN`, `$LIB` and `$PLATFORM` are expanded; a candidate of another ELF
class or machine is skipped, as the loader skips it.
"""

from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Final

LD_SO_CACHE: Final = "/etc/ld.so.cache"
_CACHE_MAGIC: Final = b"glibc-ld.so.cache1.1"
_OLD_CACHE_MAGIC: Final = b"ld.so-1.7.0"
# glibc's built-in directories, after ld.so.cache (Debian's multiarch ones first).
_DEFAULT_DIRS: Final = ("/lib/{triplet}", "/usr/lib/{triplet}", "/lib64", "/usr/lib64",
                        "/lib", "/usr/lib")
_TRIPLETS: Final = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
                    "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
                    "riscv64": "riscv64-linux-gnu"}

PT_LOAD: Final = 1
PT_DYNAMIC: Final = 2
PT_INTERP: Final = 3
DT_NEEDED: Final = 1
DT_STRTAB: Final = 5
DT_RPATH: Final = 15
DT_RUNPATH: Final = 29
DT_FLAGS_1: Final = 0x6FFFFFFB
DF_1_NODEFLIB: Final = 0x800

_MAX_PHNUM: Final = 4096
_MAX_DYNAMIC: Final = 1 << 16  # entries
_MAX_STRING: Final = 1 << 16  # bytes


class ElfError(ValueError):
    """Not an ELF file, or one whose dynamic section cannot be read."""


class ElfObject:
    """What the loader reads from one ELF file."""

    __slots__ = ("path", "kind", "needed", "rpath", "runpath", "interpreter", "nodeflib")

    def __init__(self, path: str, kind: tuple[int, int, int], needed: list[str],
                 rpath: list[str], runpath: list[str], interpreter: str,
                 nodeflib: bool) -> None:
        self.path = path
        self.kind = kind  # (ELF class, byte order, machine): a loader only mixes equal ones
        self.needed = needed
        self.rpath = rpath
        self.runpath = runpath
        self.interpreter = interpreter
        self.nodeflib = nodeflib


def _header(f: BinaryIO, path: str) -> tuple[str, tuple[int, int, int], int, int, int]:
    """(struct byte order, kind, e_phoff, e_phentsize, e_phnum)."""
    ident = f.read(64)
    if len(ident) < 52 or ident[:4] != b"\x7fELF":
        raise ElfError(f"{path}: not an ELF file")
    elf_class, data = ident[4], ident[5]
    if elf_class not in (1, 2) or data not in (1, 2):
        raise ElfError(f"{path}: unknown ELF class or byte order")
    order = "<" if data == 1 else ">"
    if elf_class == 2:
        (machine,) = struct.unpack_from(order + "H", ident, 18)
        phoff, = struct.unpack_from(order + "Q", ident, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 54)
    else:
        (machine,) = struct.unpack_from(order + "H", ident, 18)
        phoff, = struct.unpack_from(order + "I", ident, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 42)
    return order, (elf_class, data, machine), phoff, phentsize, phnum


def read(path: str) -> ElfObject:
    """The dynamic-linking facts of the ELF file at `path`; ElfError if it has none."""
    try:
        with open(path, "rb") as f:
            return _read(f, path)
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}") from None
    except struct.error:
        raise ElfError(f"{path}: truncated ELF file") from None


def _read(f: BinaryIO, path: str) -> ElfObject:
    order, kind, phoff, phentsize, phnum = _header(f, path)
    wide = kind[0] == 2
    if phnum > _MAX_PHNUM or phentsize < (56 if wide else 32):
        raise ElfError(f"{path}: implausible program headers")
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
    dynamic = interp = None
    for i in range(phnum):
        if wide:
            p_type, _, offset, vaddr, _, filesz = struct.unpack_from(
                order + "IIQQQQ", table, i * phentsize)
        else:
            p_type, offset, vaddr, _, filesz = struct.unpack_from(
                order + "IIIII", table, i * phentsize)
        if p_type == PT_LOAD:
            loads.append((vaddr, filesz, offset))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif p_type == PT_INTERP:
            interp = (offset, filesz)
    interpreter = ""
    if interp is not None:
        f.seek(interp[0])
        interpreter = f.read(min(interp[1], 4096)).split(b"\0", 1)[0].decode(
            "utf-8", "surrogateescape")
    if dynamic is None:  # statically linked
        return ElfObject(path, kind, [], [], [], interpreter, False)
    entry = "qQ" if wide else "iI"
    size = struct.calcsize(entry)
    f.seek(dynamic[0])
    raw = f.read(min(dynamic[1], _MAX_DYNAMIC * size))
    strtab = None
    needed: list[int] = []
    rpath: list[int] = []
    runpath: list[int] = []
    flags_1 = 0
    for tag, value in struct.iter_unpack(order + entry, raw[:len(raw) - len(raw) % size]):
        if tag == 0:
            break
        if tag == DT_NEEDED:
            needed.append(value)
        elif tag == DT_STRTAB:
            strtab = value
        elif tag == DT_RPATH:
            rpath.append(value)
        elif tag == DT_RUNPATH:
            runpath.append(value)
        elif tag == DT_FLAGS_1:
            flags_1 = value
    if strtab is None:
        if needed or rpath or runpath:
            raise ElfError(f"{path}: dynamic section without a string table")
        return ElfObject(path, kind, [], [], [], interpreter, False)
    base = next((off + strtab - vaddr for vaddr, filesz, off in loads
                 if vaddr <= strtab < vaddr + filesz), None)
    if base is None:
        raise ElfError(f"{path}: string table outside the file")

    def string(index: int) -> str:
        f.seek(base + index)
        return f.read(_MAX_STRING).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    def paths(indexes: list[int]) -> list[str]:
        return [p for i in indexes for p in string(i).split(":")]

    return ElfObject(path, kind, [string(i) for i in needed], paths(rpath), paths(runpath),
                     interpreter, bool(flags_1 & DF_1_NODEFLIB))


def read_ld_so_cache(path: str = LD_SO_CACHE) -> dict[str, list[str]]:
    """soname -> the paths ld.so.cache gives for it, in the loader's order of preference."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    start = 0
    if data.startswith(_OLD_CACHE_MAGIC):  # an old-format table first: skip it
        (count,) = struct.unpack_from("<I", data, 12)
        start = (16 + count * 12 + 7) & ~7
    if data[start:start + len(_CACHE_MAGIC)] != _CACHE_MAGIC:
        return {}
    try:
        count, = struct.unpack_from("=I", data, start + 20)
        entries = struct.unpack_from("=" + "iIIIQ" * count, data, start + 48)
    except struct.error:
        return {}
    found: dict[str, list[str]] = {}

    def text(offset: int) -> str:
        at = start + offset
        return data[at:data.index(b"\0", at)].decode("utf-8", "surrogateescape")

    for i in range(count):
        key, value = entries[i * 5 + 1], entries[i * 5 + 2]
        try:
            found.setdefault(text(key), []).append(text(value))
        except ValueError:
            return found
    return found


class Resolver:
    """Resolves the objects a program loads; reuse one for several programs (the
    ld.so.cache is read once)."""

    def __init__(self, library_path: str = "", cache_file: str = LD_SO_CACHE) -> None:
        self.library_path = [p for p in library_path.split(":") if p]
        self.cache_file = cache_file
        self._cache: dict[str, list[str]] | None = None
        self._objects: dict[str, ElfObject | None] = {}
        self._probed: set[str] = set()  # directories searched
        machine = os.uname().machine
        self._platform = machine
        triplet = _TRIPLETS.get(machine, f"{machine}-linux-gnu")
        self._default = [d.format(triplet=triplet) for d in _DEFAULT_DIRS]
        self._lib = ("lib/" + triplet, "lib64", "lib")  # what $LIB may be

    def _object(self, path: str) -> ElfObject | None:
        if path not in self._objects:
            try:
                self._objects[path] = read(path)
            except ElfError:
                self._objects[path] = None
        return self._objects[path]

    def _expand(self, entry: str, origin: str) -> list[str]:
        entry = entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", origin)
        entry = entry.replace("${PLATFORM}", "$PLATFORM").replace("$PLATFORM", self._platform)
        if "$LIB" in entry or "${LIB}" in entry:
            entry = entry.replace("${LIB}", "$LIB")
            return [entry.replace("$LIB", lib) for lib in self._lib]
        return [entry]

    def _candidates(self, name: str, obj: ElfObject, chain: list[ElfObject]) -> list[str]:
        origin = os.path.dirname(obj.path)
        dirs: list[str] = []
        if not obj.runpath:
            for loader in [obj, *chain]:
                origin_of = os.path.dirname(loader.path)
                dirs += [d for e in loader.rpath for d in self._expand(e, origin_of)]
        dirs += self.library_path
        dirs += [d for e in obj.runpath for d in self._expand(e, origin)]
        found = [os.path.join(d, name) for d in dirs if d]
        if self._cache is None:
            self._cache = read_ld_so_cache(self.cache_file)
        found += self._cache.get(name, [])
        if not obj.nodeflib:
            found += [os.path.join(d, name) for d in self._default]
        return found

    def _find(self, name: str, obj: ElfObject, chain: list[ElfObject]) -> ElfObject | None:
        if "/" in name:
            candidates = [name if name.startswith("/") else os.path.abspath(name)]
        else:
            candidates = self._candidates(name, obj, chain)
        for candidate in candidates:
            self._probed.add(os.path.dirname(os.path.normpath(candidate)))
            found = self._object(os.path.normpath(candidate))
            if found is not None and found.kind == obj.kind:
                return found
        return None

    def consulted(self) -> list[str]:
        """Every file and directory whose change could change what was resolved: the
        objects read, the directories searched (a library added to one), ld.so.cache."""
        return sorted({*self._objects, *self._probed, self.cache_file})

    def loaded(self, program: str) -> tuple[list[str], list[tuple[str, str]]]:
        """(the paths of every object `program` loads, itself and its interpreter
        included, as the loader names them; (name, needed by) for each DT_NEEDED name
        the loader would not find)."""
        root = self._object(os.path.normpath(program))
        if root is None:
            return [], []
        order = [root.path]
        missing: list[tuple[str, str]] = []
        if root.interpreter:
            order.append(os.path.normpath(root.interpreter))
        queue: list[tuple[ElfObject, list[ElfObject]]] = [(root, [])]
        seen = {root.path}
        names: set[str] = set()
        while queue:
            obj, chain = queue.pop(0)
            for name in obj.needed:
                if name in names:
                    continue  # the loader loads a soname once
                found = self._find(name, obj, chain)
                if found is None:
                    missing.append((name, obj.path))
                    continue
                names.add(name)
                if found.path not in seen:
                    seen.add(found.path)
                    order.append(found.path)
                    queue.append((found, [obj, *chain]))
        return order, missing


def shared_objects(directories: list[str]) -> list[str]:
    """Every regular `*.so` file under `directories` (subdirectories included, their
    symlinks not followed), as a plugin loader walking them finds them."""
    found: list[str] = []
    for top in directories:
        for directory, _, names in os.walk(top):
            found += [os.path.join(directory, n) for n in sorted(names) if n.endswith(".so")
                      and os.path.isfile(os.path.join(directory, n))]
    return found


def directories(paths: list[str]) -> list[str]:
    """The directories holding `paths`, as named and with symlinks resolved (a name's
    link may lead elsewhere), without repeats."""
    found: list[str] = []
    for path in paths:
        for directory in (os.path.dirname(path), os.path.dirname(os.path.realpath(path))):
            if directory not in found:
                found.append(directory)
    return found
