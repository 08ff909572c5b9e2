"""The code sandbox's child process: confine itself, then run the user's ``main(**inputs)``.

:mod:`danlu.builder.sandbox` starts this file *by path* as ``python -I -B -X utf8 <file>``, so
it imports nothing but the standard library (``-I`` keeps this directory, the working
directory, ``PYTHONPATH`` and the user site directory out of ``sys.path``).

Protocol. The parent writes one JSON request on stdin and closes it::

    {"code": str, "inputs": {...}, "limits": {...}, "scratch": str, "parent_pid": int,
     "allow_degraded": bool, "disable": [layer, ...]}

The child answers with one JSON object on the pipe it was given as stdout, then exits::

    {"ok": true, "outputs": {...}, "stdout": str, "layers": {...}}
    {"ok": false, "kind": str, "message": str, "traceback": str | null, "stdout": str,
     "layers": {...}}

The user's code runs in this same process, so it can write to that pipe too; the parent
therefore treats the reply as untrusted (it re-checks its shape and size) -- forging a reply
only lets the code return what it could have returned anyway.

Before any user code runs, in this order: resource limits; user, network and mount
namespaces and a size-limited tmpfs over the scratch directory (where the kernel allows);
``PR_SET_NO_NEW_PRIVS``; every capability dropped; Landlock (files: read the Python
installation, read/write the scratch directory, nothing else; TCP: nothing; signals and
abstract UNIX sockets: only within the sandbox); a seccomp filter (no sockets, processes,
exec, ptrace, mounts, namespaces, kernel keyrings, ...: the calls fail with EPERM); and an
audit hook. ``docs/sandbox.md`` says what each layer blocks and what it does not.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import io
import json
import linecache
import os
import resource
import signal
import socket
import sys
import traceback
import types
from collections.abc import Callable, Iterable
from typing import Any

# ---------------------------------------------------------------- libc

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_ulong = ctypes.c_ulong
_libc.prctl.argtypes = [ctypes.c_int, _ulong, _ulong, _ulong, _ulong]
_libc.unshare.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.restype = ctypes.c_int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _ulong, ctypes.c_char_p]

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 1 << 14
MS_PRIVATE = 1 << 18
SCRATCH_FILES = 4096  # inodes on the scratch tmpfs
CLONE_THREAD = 0x00010000


class LayerUnavailable(Exception):
    """A confinement layer could not be applied; the message says why."""


def _errno_text(err: int) -> str:
    return f"{errno.errorcode.get(err, str(err))} ({os.strerror(err)})"


def _syscall(nr: int, *args: int | ctypes.c_void_p | None) -> int:
    """Call a raw system call; return its result, or raise OSError with the errno."""
    converted: list[Any] = [
        ctypes.c_long(a) if isinstance(a, int) else (a if a is not None else ctypes.c_void_p(0))
        for a in args
    ]
    result = int(_libc.syscall(ctypes.c_long(nr), *converted))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, _errno_text(err))
    return result


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _libc.prctl(option, arg2, arg3, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, _errno_text(err))


# ---------------------------------------------------------------- architectures
#
# Syscall numbers for the two architectures danlu runs on: x86_64 (asm/unistd_64.h) and
# aarch64 (asm-generic/unistd.h). Anything else has no table, so no seccomp filter: the sandbox
# refuses to run there unless degraded mode is explicitly allowed.

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7

_X86_64: dict[str, int] = {
    "socket": 41, "socketpair": 53, "fork": 57, "vfork": 58, "clone": 56, "clone3": 435,
    "execve": 59, "execveat": 322, "ptrace": 101, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "mount": 165, "umount2": 166, "pivot_root": 155,
    "chroot": 161, "unshare": 272, "setns": 308, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "keyctl": 250, "add_key": 248, "request_key": 249, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "reboot": 169, "swapon": 167,
    "swapoff": 168, "acct": 163, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
    "clock_adjtime": 305, "syslog": 103, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "quotactl": 179, "quotactl_fd": 443, "sethostname": 170, "setdomainname": 171,
    "vhangup": 153, "fanotify_init": 300, "lookup_dcookie": 212, "mknod": 133, "mknodat": 259,
    "uselib": 134, "iopl": 172, "ioperm": 173, "kill": 62, "tkill": 200, "tgkill": 234,
    "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_open": 434,
    "pidfd_send_signal": 424, "pidfd_getfd": 438, "prlimit64": 302, "setpriority": 141,
    "ioprio_set": 251, "sched_setaffinity": 203, "sched_setscheduler": 144,
    "sched_setparam": 142, "sched_setattr": 314, "migrate_pages": 256, "move_pages": 279,
    "get_robust_list": 274, "process_madvise": 440, "process_mrelease": 448,
}  # fmt: skip

_AARCH64: dict[str, int] = {
    "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435, "execve": 221,
    "execveat": 281, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
    "kcmp": 272, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97,
    "setns": 268, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442, "kexec_load": 104,
    "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
    "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217,
    "request_key": 218, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "settimeofday": 170,
    "clock_settime": 112, "adjtimex": 171, "clock_adjtime": 266, "syslog": 116,
    "name_to_handle_at": 264, "open_by_handle_at": 265, "quotactl": 60, "quotactl_fd": 443,
    "sethostname": 161, "setdomainname": 162, "vhangup": 58, "fanotify_init": 262,
    "lookup_dcookie": 18, "mknodat": 33, "kill": 129, "tkill": 130, "tgkill": 131,
    "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240, "pidfd_open": 434,
    "pidfd_send_signal": 424, "pidfd_getfd": 438, "prlimit64": 261, "setpriority": 140,
    "ioprio_set": 30, "sched_setaffinity": 122, "sched_setscheduler": 119,
    "sched_setparam": 118, "sched_setattr": 274, "migrate_pages": 238, "move_pages": 239,
    "get_robust_list": 100, "process_madvise": 440, "process_mrelease": 448,
}  # fmt: skip

# machine name (os.uname) -> (AUDIT_ARCH value, syscall table, seccomp(2) number)
_ARCHES: dict[str, tuple[int, dict[str, int], int]] = {
    "x86_64": (AUDIT_ARCH_X86_64, _X86_64, 317),
    "aarch64": (AUDIT_ARCH_AARCH64, _AARCH64, 277),
}

# Landlock's three calls have the same numbers on every architecture (unified syscall table).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

# Calls that always fail with EPERM once the filter is in place.
_DENIED = (
    "socket", "fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "reboot", "swapon", "swapoff", "acct",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "syslog",
    "name_to_handle_at", "open_by_handle_at", "quotactl", "quotactl_fd", "sethostname",
    "setdomainname", "vhangup", "fanotify_init", "lookup_dcookie", "mknod", "mknodat", "uselib",
    "iopl", "ioperm", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open",
    "pidfd_send_signal", "pidfd_getfd", "setpriority", "ioprio_set", "migrate_pages",
    "move_pages", "get_robust_list", "process_madvise", "process_mrelease",
)  # fmt: skip


# ---------------------------------------------------------------- seccomp

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_SET_MODE_FILTER = 1
_NR = 0  # offsetof(struct seccomp_data, nr)
_ARCH = 4  # offsetof(struct seccomp_data, arch)


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of syscall argument ``index`` (both arches are little-endian)."""
    return 16 + 8 * index


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


Insn = tuple[int, int, int, int]


def _ret(value: int) -> Insn:
    return (_BPF_RET_K, 0, 0, value)


def _allow_if_arg_in(nr: int, arg: int, values: Iterable[int]) -> list[Insn]:
    """``nr`` is allowed only when argument ``arg`` is one of ``values``; else EPERM."""
    vals = list(values)
    body: list[Insn] = [(_BPF_LD_W_ABS, 0, 0, _arg_low(arg))]
    for i, value in enumerate(vals):
        body.append((_BPF_JEQ_K, len(vals) - i, 0, value & 0xFFFFFFFF))
    body += [_ret(SECCOMP_RET_ERRNO | errno.EPERM), _ret(SECCOMP_RET_ALLOW)]
    return [(_BPF_JEQ_K, 0, len(body), nr), *body]


def seccomp_program(machine: str, pid: int) -> list[Insn]:
    """The filter for this architecture; raises LayerUnavailable where there is no table."""
    if machine not in _ARCHES or sys.maxsize <= 2**32:
        raise LayerUnavailable(
            f"seccomp: no syscall table for architecture {machine!r} "
            f"({'32' if sys.maxsize <= 2**32 else '64'}-bit Python); "
            f"known: {', '.join(sorted(_ARCHES))}"
        )
    audit_arch, table, _ = _ARCHES[machine]
    eperm = _ret(SECCOMP_RET_ERRNO | errno.EPERM)
    prog: list[Insn] = [
        # A foreign calling convention (e.g. 32-bit compat calls) has other numbers: kill.
        (_BPF_LD_W_ABS, 0, 0, _ARCH),
        (_BPF_JEQ_K, 1, 0, audit_arch),
        _ret(SECCOMP_RET_KILL_PROCESS),
        (_BPF_LD_W_ABS, 0, 0, _NR),
    ]
    if machine == "x86_64":
        # The x32 ABI reuses the x86_64 arch value with bit 30 set in the number.
        prog += [(_BPF_JGE_K, 0, 1, 0x40000000), eperm]
    for name in _DENIED:
        if name in table:
            prog += [(_BPF_JEQ_K, 0, 1, table[name]), eperm]
    # clone3 passes its flags in memory, where BPF cannot look: ENOSYS makes glibc fall back to
    # clone(2), whose flags it can check.
    prog += [(_BPF_JEQ_K, 0, 1, table["clone3"]), _ret(SECCOMP_RET_ERRNO | errno.ENOSYS)]
    # clone: threads (CLONE_THREAD) only, never a new process.
    prog += [
        (_BPF_JEQ_K, 0, 4, table["clone"]),
        (_BPF_LD_W_ABS, 0, 0, _arg_low(0)),
        (_BPF_JSET_K, 1, 0, CLONE_THREAD),
        eperm,
        _ret(SECCOMP_RET_ALLOW),
    ]
    # A connected pair of UNIX sockets reaches nothing outside (asyncio's self-pipe needs it).
    prog += _allow_if_arg_in(table["socketpair"], 0, [socket.AF_UNIX])
    # Signals, limits and scheduling: this process only (0 means "self" for these calls).
    prog += _allow_if_arg_in(table["kill"], 0, [pid, 0])
    prog += _allow_if_arg_in(table["tgkill"], 0, [pid])
    for name in ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam",
                 "sched_setattr"):  # fmt: skip
        prog += _allow_if_arg_in(table[name], 0, [0, pid])
    prog.append(_ret(SECCOMP_RET_ALLOW))
    return prog


def apply_seccomp(pid: int) -> None:
    machine = os.uname().machine
    prog = seccomp_program(machine, pid)
    seccomp_nr = _ARCHES[machine][2]
    filters = (_SockFilter * len(prog))(*(_SockFilter(*insn) for insn in prog))
    fprog = _SockFprog(len(prog), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    try:
        _syscall(
            seccomp_nr,
            SECCOMP_SET_MODE_FILTER,
            0,
            ctypes.c_void_p(ctypes.addressof(fprog)),
        )
    except OSError as exc:
        raise LayerUnavailable(f"seccomp: the kernel refused the filter: {exc.strerror}") from None


# ---------------------------------------------------------------- Landlock

LL_EXECUTE = 1 << 0
LL_WRITE_FILE = 1 << 1
LL_READ_FILE = 1 << 2
LL_READ_DIR = 1 << 3
LL_REFER = 1 << 13  # ABI 2
LL_TRUNCATE = 1 << 14  # ABI 3
LL_IOCTL_DEV = 1 << 15  # ABI 5
LL_FS_V1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_NET_BIND_TCP = 1 << 0  # ABI 4
LL_NET_CONNECT_TCP = 1 << 1  # ABI 4
LL_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
LL_SCOPE_SIGNAL = 1 << 1  # ABI 6
LL_RULE_PATH_BENEATH = 1
LL_CREATE_RULESET_VERSION = 1 << 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; raises LayerUnavailable without one."""
    try:
        return _syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LL_CREATE_RULESET_VERSION)
    except OSError as exc:
        why = {
            errno.ENOSYS: "the kernel has no Landlock (needs Linux >= 5.13 built with it)",
            errno.EOPNOTSUPP: "Landlock is built in but not enabled (add it to the lsm= list)",
            errno.EPERM: "a seccomp policy (e.g. a container's) forbids the Landlock calls",
        }.get(exc.errno or 0, exc.strerror)
        raise LayerUnavailable(f"Landlock: {why}") from None


def read_only_paths() -> list[str]:
    """What the child may read: its import path and the shared libraries it may load."""
    import sysconfig

    paths = [p for p in sys.path if p]
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str):
        paths.append(libdir)
    paths += ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"]
    paths += ["/etc/ld.so.cache", "/usr/share/zoneinfo", "/dev/urandom", "/dev/random", "/dev/zero"]
    # Never the whole tree, whatever sys.path says.
    return [p for p in dict.fromkeys(paths) if os.path.realpath(p) != "/"]


def apply_landlock(scratch: str) -> int:
    """Confine the file system to the read-only set plus the scratch directory; return the ABI."""
    abi = landlock_abi()
    fs = LL_FS_V1
    if abi >= 2:
        fs |= LL_REFER
    if abi >= 3:
        fs |= LL_TRUNCATE
    if abi >= 5:
        fs |= LL_IOCTL_DEV
    net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP if abi >= 4 else 0
    scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    try:
        ruleset = _syscall(
            SYS_LANDLOCK_CREATE_RULESET, ctypes.c_void_p(ctypes.addressof(attr)), size, 0
        )
    except OSError as exc:
        raise LayerUnavailable(f"Landlock: cannot create a ruleset: {exc.strerror}") from None
    try:
        read = LL_READ_FILE | LL_READ_DIR
        rules: list[tuple[str, int]] = [(p, read) for p in read_only_paths()]
        rules += [("/dev/null", LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE), (scratch, fs)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this system does not have
            try:
                if not os.path.isdir(path):
                    access &= LL_FILE_RIGHTS
                rule = _PathBeneathAttr(access & fs, fd)
                _syscall(
                    SYS_LANDLOCK_ADD_RULE,
                    ruleset,
                    LL_RULE_PATH_BENEATH,
                    ctypes.c_void_p(ctypes.addressof(rule)),
                    0,
                )
            except OSError as exc:
                raise LayerUnavailable(f"Landlock: cannot add a rule for {path}: {exc}") from None
            finally:
                os.close(fd)
        try:
            _syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
        except OSError as exc:
            raise LayerUnavailable(f"Landlock: restrict_self failed: {exc.strerror}") from None
    finally:
        os.close(ruleset)
    return abi


# ---------------------------------------------------------------- namespaces, capabilities


def apply_namespaces() -> None:
    """New user, network and mount namespaces: the network one is empty (no interfaces but a
    loopback that is down); the user one gives the right to make the others and to mount."""
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0:
        raise LayerUnavailable(f"namespaces: unshare refused: {_errno_text(ctypes.get_errno())}")
    # Map our own ids, so files we create in the scratch directory have an owner. We are in
    # the new namespaces already: failing here must stop the run, not downgrade it.
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as exc:
        raise RuntimeError(f"cannot map ids in the new user namespace: {exc}") from None


def mount_scratch_tmpfs(scratch: str, size: int) -> None:
    """Cover the scratch directory with a tmpfs of bounded size and file count (only in our
    mount namespace: the server still sees the empty directory it made)."""
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise LayerUnavailable(
            f"tmpfs: cannot make mounts private: {_errno_text(ctypes.get_errno())}"
        )
    options = f"size={size},nr_inodes={SCRATCH_FILES},mode=0700".encode()
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _libc.mount(b"tmpfs", os.fsencode(scratch), b"tmpfs", flags, options) != 0:
        raise LayerUnavailable(f"tmpfs: mount refused: {_errno_text(ctypes.get_errno())}")
    os.chdir(scratch)  # the old working directory is the directory underneath


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            # EINVAL: past the last capability. EPERM: no CAP_SETPCAP, so nothing to drop here
            # that matters (the bounding set only limits what execve grants, and execve is off).
            break
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise LayerUnavailable(f"capabilities: capset failed: {_errno_text(ctypes.get_errno())}")


# ---------------------------------------------------------------- audit hook

_AUDIT_DENIED = (
    "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "pty.", "resource.setrlimit", "resource.prlimit",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "ctypes.cdata",
    "ctypes.string_at", "ctypes.wstring_at", "webbrowser.", "sys.remote_exec",
)  # fmt: skip


_FUNCTION_INTERNALS = ("__code__", "__defaults__", "__kwdefaults__")


def make_audit_hook() -> Callable[[str, tuple[Any, ...]], None]:
    """The hook, self-contained: every name it uses is bound as a default argument, so the
    user's code cannot swap its constants or builtins through this module's globals (this
    file runs as ``__main__``), and replacing the hook's own code or defaults is refused."""

    def hook(
        event: str,
        args: tuple[Any, ...],
        denied: tuple[str, ...] = _AUDIT_DENIED,
        me: int = os.getpid(),
        af_unix: int = int(socket.AF_UNIX),
        internals: tuple[str, ...] = _FUNCTION_INTERNALS,
        forbid: type[Exception] = PermissionError,
        length: Callable[[tuple[Any, ...]], int] = len,
        function: type[types.FunctionType] = types.FunctionType,
        type_of: Callable[[object], type] = type,
        own_code: object = None,
    ) -> None:
        if event.startswith("socket."):
            if event == "socket.__new__" and length(args) > 1 and args[1] == af_unix:
                return  # UNIX socket objects (socketpair); seccomp forbids socket() itself
            raise forbid(f"sandbox: network access is not allowed ({event})")
        if event == "os.kill" and args and args[0] in (0, me):
            return  # signalling itself (seccomp allows this too)
        if event.startswith(denied):
            raise forbid(f"sandbox: {event} is not allowed")
        if (
            event == "object.__setattr__"
            and length(args) > 1
            and args[1] in internals
            and type_of(args[0]) is function
            and args[0].__code__ is own_code
        ):
            raise forbid("sandbox: the audit hook cannot be changed")

    # The same code again, now knowing its own (immutable) code object.
    defaults = (*(hook.__defaults__ or ())[:-1], hook.__code__)
    bound: Callable[[str, tuple[Any, ...]], None] = types.FunctionType(
        hook.__code__, {"__builtins__": builtins}, "sandbox_audit_hook", defaults
    )
    return bound


# ---------------------------------------------------------------- running the code


class _Capture(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` for the user's code: keeps the first ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0
        self._limit = limit

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only on TextIOBase too
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, s: str, /) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        size = len(s.encode("utf-8", "surrogatepass"))
        room = self._limit - self._size
        if size <= room:
            self._parts.append(s)
            self._size += size
        else:
            cut = s[: max(room, 0)]
            while (excess := len(cut.encode("utf-8", "surrogatepass")) - room) > 0:
                cut = cut[: len(cut) - (excess + 3) // 4]
            self._parts.append(cut)
            kept = len(cut.encode("utf-8", "surrogatepass"))
            self._size += kept
            self._dropped += size - kept
        return len(s)

    def text(self) -> str:
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[stdout truncated: {self._dropped} more bytes]"
        return text


def _describe(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:
        detail = "<unprintable>"
    name = type(exc).__name__
    text = f"{name}: {detail}" if detail else name
    return text if len(text) <= 2000 else text[:2000] + "..."


def _user_traceback(exc: BaseException) -> str | None:
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<code>"]
        lines = traceback.format_list(frames) + traceback.format_exception_only(exc)
        text = "Traceback (most recent call last):\n" + "".join(lines)
    except Exception:
        return None
    return text if len(text) <= 8000 else text[:8000] + "...\n"


def _fail(kind: str, message: str, tb: str | None = None) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message, "traceback": tb}


def run_user_code(code: str, inputs: dict[str, Any], output_bytes: int) -> dict[str, Any]:
    """Compile and run the code, then call main(**inputs); the reply minus stdout and layers."""
    try:
        compiled = compile(code, "<code>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return _fail("bad_code", f"the code does not compile: {exc.msg}{where}")
    except (ValueError, MemoryError, RecursionError) as exc:
        return _fail("bad_code", f"the code does not compile: {_describe(exc)}")
    linecache.cache["<code>"] = (len(code), None, code.splitlines(True), "<code>")
    namespace: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": builtins}
    reserve: bytearray | None = bytearray(1 << 20)  # freed to report a MemoryError
    stage = "while loading the code"
    try:
        exec(compiled, namespace)  # noqa: S102 -- running it is the point; confined above
        main = namespace.get("main")
        if not callable(main):
            return _fail(
                "bad_code", "the code must define a function main(**inputs) that returns a dict"
            )
        stage = "in main()"
        result = main(**inputs)
    except MemoryError:
        reserve = None
        return _fail("memory", f"the code ran out of memory {stage}")
    except PermissionError as exc:
        return _fail("forbidden", f"sandbox forbade an operation {stage}: {_describe(exc)}",
                     _user_traceback(exc))  # fmt: skip
    except SystemExit as exc:
        return _fail("error", f"the code called exit({exc.code!r}) {stage}")
    except BaseException as exc:
        return _fail("error", f"{_describe(exc)} (raised {stage})", _user_traceback(exc))
    del reserve
    if not isinstance(result, dict):
        return _fail("error", f"main() must return a dict, not {type(result).__name__}")
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return _fail("error", f"main() must return a JSON-serialisable dict: {_describe(exc)}")
    except MemoryError:
        return _fail("memory", "ran out of memory encoding main()'s result")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > output_bytes:
        return _fail(
            "output", f"main() returned {size} bytes of JSON; the limit is {output_bytes} bytes"
        )
    return {"ok": True, "outputs": json.loads(text)}


# ---------------------------------------------------------------- the whole run


def set_rlimits(limits: dict[str, Any]) -> None:
    cpu = int(limits["cpu_seconds"])
    memory = int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def is_on(state: str) -> bool:
    return state == "on" or state.startswith("on ")


def confine(request: dict[str, Any]) -> dict[str, str]:
    """Apply every layer; return each one's state ("on", or "off: why")."""
    disabled = set(request.get("disable", ()))
    layers: dict[str, str] = {"rlimits": "on"}

    def attempt(name: str, step: Callable[[], object]) -> None:
        if name in disabled:
            layers[name] = "off: disabled by the caller"
            return
        try:
            result = step()
        except LayerUnavailable as exc:
            layers[name] = f"off: {exc}"
        except OSError as exc:
            layers[name] = f"off: {name}: {exc}"
        else:
            layers[name] = f"on (ABI {result})" if name == "landlock" else "on"

    attempt("netns", apply_namespaces)
    if is_on(layers["netns"]):
        size = int(request["limits"]["memory_bytes"])
        attempt("tmpfs", lambda: mount_scratch_tmpfs(request["scratch"], size))
    else:
        layers["tmpfs"] = "off: needs the namespaces"
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        for name in ("landlock", "seccomp"):
            layers[name] = f"off: PR_SET_NO_NEW_PRIVS failed: {exc}"
        return layers
    attempt("capabilities", drop_capabilities)
    attempt("landlock", lambda: apply_landlock(request["scratch"]))
    attempt("seccomp", lambda: apply_seccomp(os.getpid()))
    return layers


REQUIRED = ("landlock", "seccomp")


def serve(request: dict[str, Any], out: _Capture) -> dict[str, Any]:
    set_rlimits(request["limits"])
    layers = confine(request)
    missing = [f"{name} ({layers[name][5:]})" for name in REQUIRED if not is_on(layers[name])]
    ran = not missing or bool(request.get("allow_degraded"))
    if not ran:
        reply = _fail(
            "forbidden",
            "sandbox refused to run the code: required isolation is unavailable: "
            + "; ".join(missing)
            + " (pass allow_degraded=True to run without it)",
        )
    else:
        if "audit" in request.get("disable", ()):
            layers["audit"] = "off: disabled by the caller"
        else:
            sys.addaudithook(make_audit_hook())
            layers["audit"] = "on"
        sys.stdout = sys.stderr = out
        try:
            reply = run_user_code(
                request["code"], request["inputs"], int(request["limits"]["output_bytes"])
            )
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    reply["layers"] = layers
    reply["ran"] = ran
    return reply


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    # Die with the server; and if it is already gone, do not run at all.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != request["parent_pid"]:
        os._exit(1)
    # stdin: nothing. fd 1 (for C code and raw writes) joins stderr; the reply gets its own fd.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    os.chdir(request["scratch"])
    out = _Capture(int(request["limits"]["output_bytes"]))
    try:
        reply = serve(request, out)
    except MemoryError:
        reply = _fail("memory", "the sandbox ran out of memory")
    except BaseException as exc:
        reply = _fail("error", f"sandbox internal error: {_describe(exc)}")
    reply["stdout"] = out.text()
    data = json.dumps(reply, ensure_ascii=True, default=repr).encode("ascii")
    view = memoryview(data)
    while view:
        written = os.write(reply_fd, view)
        view = view[written:]
    os._exit(0)  # no atexit handlers, no finalisers of the user's objects, no lingering threads


if __name__ == "__main__":
    main()
