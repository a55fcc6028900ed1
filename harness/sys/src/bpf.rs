//! bpf(2): loading eBPF programs and making maps, with the verifier's log.
//!
//! Why it exists: `harness doctor` asks the kernel whether it lets the
//! harness load the program types its eBPF steering needs (a SOCKET_FILTER,
//! whose return value picks a socket of a SO_REUSEPORT group, and an
//! SK_REUSEPORT program, attached for SELECT or SELECT_OR_MIGRATE) and make
//! the maps they use (an ARRAY, a REUSEPORT_SOCKARRAY); the eBPF steering
//! models will load their programs through the same two calls. No libbpf and
//! no C toolchain: a program is a slice of [`Insn`], and the `union
//! bpf_attr` of each command is built by hand (`Attr`), zeroed first, as
//! the kernel requires of every byte it does not know.
//!
//! Constants are those of the kernel's uapi `linux/bpf.h` (enum bpf_cmd,
//! bpf_prog_type, bpf_attach_type, bpf_map_type); the tests check them
//! against this kernel where a wrong value would be refused.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::owned;

/// BPF_MAP_CREATE (enum bpf_cmd).
const BPF_MAP_CREATE: libc::c_int = 0;
/// BPF_PROG_LOAD (enum bpf_cmd).
const BPF_PROG_LOAD: libc::c_int = 5;
/// bpf(2) command: set one element of a map.
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
/// map_flags: the map's values may be mmap(2)ed (ARRAY maps, Linux 5.5).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A program run on a socket's packets; attached to a SO_REUSEPORT group
/// (SO_ATTACH_REUSEPORT_EBPF) its return value is the index of the socket
/// that gets the connection.
pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// A program that picks a socket of a SO_REUSEPORT group from a
/// REUSEPORT_SOCKARRAY (bpf_sk_select_reuseport) and returns SK_PASS or
/// SK_DROP (Linux 4.19).
pub const BPF_PROG_TYPE_SK_REUSEPORT: u32 = 21;

/// SK_REUSEPORT program run when a SYN arrives (Linux 5.14; 0 before).
pub const BPF_SK_REUSEPORT_SELECT: u32 = 39;
/// SK_REUSEPORT program also run when a listener of the group closes and
/// its queued connections move to another one (net.ipv4.tcp_migrate_req).
pub const BPF_SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;

/// An array of fixed-size values indexed by a u32.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// The sockets of a SO_REUSEPORT group, by index (key 4 bytes, value 4 or
/// 8: a socket's fd going in, its cookie coming out).
pub const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: u32 = 20;

/// The return value of an SK_REUSEPORT program that lets the connection in.
pub const SK_PASS: i32 = 1;

/// Bytes of verifier log kept for a failed load.
const LOG_SIZE: usize = 64 * 1024;

/// One eBPF instruction (`struct bpf_insn`, 8 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode: class | operation | source.
    pub code: u8,
    /// dst_reg in the low four bits, src_reg in the high four (the C
    /// bitfields' order on a little-endian machine).
    pub regs: u8,
    /// A signed offset (jumps, memory).
    pub off: i16,
    /// A signed immediate.
    pub imm: i32,
}

/// Instruction classes and fields (linux/bpf_common.h, linux/bpf.h).
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_MOV: u8 = 0xb0;
const BPF_EXIT: u8 = 0x90;
const BPF_K: u8 = 0x00;

impl Insn {
    /// An instruction from its fields; `dst` and `src` are registers 0-10.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            (src << 4) | (dst & 0x0f)
        } else {
            (dst << 4) | (src & 0x0f)
        };
        Insn { code, regs, off, imm }
    }

    /// `dst = imm` (64-bit move of a sign-extended immediate).
    pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    /// `exit`: return r0.
    pub const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
}

/// The BPF_PROG_LOAD member of `union bpf_attr`, up to
/// expected_attach_type (72 bytes; no padding inside).
#[repr(C)]
#[derive(Clone, Copy)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_MAP_CREATE member of `union bpf_attr`, up to map_name (44 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The BPF_MAP_*_ELEM member of `union bpf_attr` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct MapElem {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` as the commands here use it, 128 bytes, 8-aligned
/// (as the kernel's `__aligned_u64` members are). Made zeroed ([`Attr::zeroed`])
/// and then one member written: every byte past that member stays zero, as
/// the kernel checks for the fields it knows and this code does not.
#[repr(C)]
union Attr {
    prog_load: ProgLoad,
    map_create: MapCreate,
    map_elem: MapElem,
    bytes: [u64; 16],
}

impl Attr {
    fn zeroed() -> Attr {
        Attr { bytes: [0; 16] }
    }
}

/// A load the verifier (or the kernel before it) refused: the errno and
/// what the verifier logged. Carried inside the `io::Error` that
/// [`prog_load`] returns (`e.get_ref()` and downcast), whose kind is the
/// errno's.
#[derive(Debug)]
pub struct LoadError {
    /// The errno of bpf(2): EINVAL or EACCES for a program the verifier
    /// rejects, EPERM without the privilege to load this type.
    pub errno: i32,
    /// The verifier's log, trimmed (empty when the kernel refused before
    /// verifying).
    pub log: String,
}

impl LoadError {
    /// The verifier's reason: the log's last line but its statistics
    /// (`processed N insns ...`, which it always ends with).
    pub fn reason(&self) -> Option<&str> {
        self.log
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BPF_PROG_LOAD: {}", io::Error::from_raw_os_error(self.errno))?;
        match self.reason() {
            Some(r) => write!(f, "; verifier: {r}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for LoadError {}

/// bpf(2) with `attr`; retried while the kernel says EAGAIN (a verifier
/// interrupted by a signal), as libbpf does, a few times at most.
fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<OwnedFd> {
    let ret = bpf_ret(cmd, attr)?;
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("bpf(2) returned an impossible descriptor"))?;
    // The new program or map, CLOEXEC (the kernel always sets it).
    Ok(owned(fd))
}

/// bpf(2) for a command that returns a number (0 for most), retried on
/// EAGAIN a few times.
fn bpf_ret(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    let mut tries = 0;
    loop {
        // SAFETY: `attr` is a valid, initialised union of the size passed,
        // alive across the call; every pointer stored in it (instructions,
        // license, log buffer; a key and a value) points at memory the
        // caller keeps alive and describes with the matching length (a
        // key and a value have the map's sizes, which the caller made).
        let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut Attr, size_of::<Attr>() as libc::c_uint) };
        if ret >= 0 {
            return Ok(ret);
        }
        let e = io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EAGAIN) || tries >= 5 {
            return Err(e);
        }
    }
}

/// Loads `insns` as a program of `prog_type` (`expected_attach_type` 0
/// unless the type needs one, as SK_REUSEPORT does) under `license`.
///
/// The first attempt asks for no log (a log too small for a long, valid
/// program would fail it with ENOSPC); if it fails, the program is loaded
/// again at log level 1 for the verifier's account. The error's kind is
/// then the errno's and it carries a [`LoadError`] with that log
/// ([`load_error`]; [`errno_of`] reads the errno back).
pub fn prog_load(prog_type: u32, expected_attach_type: u32, insns: &[Insn], license: &CStr) -> io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many BPF instructions"))?;
    let attr = |log: Option<&mut [u8]>| {
        let (log_level, log_size, log_buf) = match log {
            Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
            None => (0, 0, 0),
        };
        let mut attr = Attr::zeroed();
        attr.prog_load = ProgLoad {
            prog_type,
            insn_cnt,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size,
            log_buf,
            kern_version: 0,
            prog_flags: 0,
            prog_name: [0; 16],
            prog_ifindex: 0,
            expected_attach_type,
        };
        attr
    };
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr(None)) {
        return Ok(fd);
    }
    let mut log = vec![0u8; LOG_SIZE];
    let e = match bpf(BPF_PROG_LOAD, &mut attr(Some(&mut log))) {
        // Loaded the second time (a transient failure): keep it.
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let log = String::from_utf8_lossy(&log[..end]).trim().to_string();
    Err(io::Error::new(e.kind(), LoadError { errno, log }))
}

/// The errno of an error from this module: the OS error's, or the one a
/// [`LoadError`] carries.
pub fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| load_error(e).map(|l| l.errno))
}

/// Makes a map of `map_type` with `max_entries` entries of the given key
/// and value sizes.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> io::Result<OwnedFd> {
    map_create_flags(map_type, key_size, value_size, max_entries, 0)
}

/// [`map_create`] with `map_flags` (such as [`BPF_F_MMAPABLE`]).
pub fn map_create_flags(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = Attr::zeroed();
    attr.map_create = MapCreate {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: [0; 16],
    };
    bpf(BPF_MAP_CREATE, &mut attr)
}

/// Sets the element of `map` under the u32 `key` to the u64 `value` (for a
/// REUSEPORT_SOCKARRAY, a listening socket's descriptor).
pub fn map_update_u32_u64(map: BorrowedFd<'_>, key: u32, value: u64) -> io::Result<()> {
    let mut attr = Attr::zeroed();
    attr.map_elem = MapElem {
        map_fd: map.as_raw_fd() as u32,
        pad: 0,
        key: &key as *const u32 as u64,
        value: &value as *const u64 as u64,
        flags: 0, // BPF_ANY
    };
    bpf_ret(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// The verifier's log of a failed [`prog_load`], if `e` came from one.
pub fn load_error(e: &io::Error) -> Option<&LoadError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<LoadError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    const LICENSE: &CStr = c"Dual MIT/GPL";

    /// `r0 = ret; exit`.
    fn returns(ret: i32) -> [Insn; 2] {
        [Insn::mov64_imm(0, ret), Insn::exit()]
    }

    /// Whether the kernel refused for want of privilege: a skip off CI.
    fn unprivileged(e: &io::Error) -> bool {
        let denied =
            matches!(errno_of(e), Some(libc::EPERM | libc::EACCES)) && load_error(e).is_none_or(|l| l.log.is_empty());
        if denied {
            assert!(std::env::var_os("CI").is_none(), "CI is set but bpf(2) is refused: {e}");
            eprintln!("skipped: bpf(2) refused here ({e})");
        }
        denied
    }

    #[test]
    fn the_layouts_are_the_kernels() {
        assert_eq!(size_of::<Insn>(), 8);
        assert_eq!(size_of::<ProgLoad>(), 72);
        assert_eq!(size_of::<MapCreate>(), 44);
        assert_eq!(size_of::<Attr>(), 128);
        assert_eq!(std::mem::align_of::<Attr>(), 8);
        // r0 = 1: BPF_ALU64 | BPF_MOV | BPF_K, dst 0, imm 1; exit: 0x95.
        assert_eq!(
            Insn::mov64_imm(0, 1),
            Insn {
                code: 0xb7,
                regs: 0,
                off: 0,
                imm: 1
            }
        );
        assert_eq!(Insn::mov64_imm(3, -1).regs & 0x0f, 3);
        assert_eq!(Insn::exit().code, 0x95);
    }

    #[test]
    fn a_socket_filter_and_an_sk_reuseport_program_load() {
        let fd = match prog_load(BPF_PROG_TYPE_SOCKET_FILTER, 0, &returns(1), LICENSE) {
            Err(e) if unprivileged(&e) => return,
            r => r.unwrap(),
        };
        assert!(crate::is_cloexec(fd.as_fd()).unwrap());
        // SK_REUSEPORT takes only SELECT and SELECT_OR_MIGRATE (and 0, which
        // the kernel reads as SELECT): a wrong constant would be refused.
        for attach in [BPF_SK_REUSEPORT_SELECT, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE] {
            prog_load(BPF_PROG_TYPE_SK_REUSEPORT, attach, &returns(SK_PASS), LICENSE)
                .unwrap_or_else(|e| panic!("attach type {attach}: {e}"));
        }
        for neighbour in [BPF_SK_REUSEPORT_SELECT - 1, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE + 1] {
            let e = prog_load(BPF_PROG_TYPE_SK_REUSEPORT, neighbour, &returns(SK_PASS), LICENSE).unwrap_err();
            assert_eq!(e.raw_os_error(), None, "the errno is inside: {e:?}");
            assert_eq!(errno_of(&e), Some(libc::EINVAL), "attach type {neighbour}: {e}");
        }
    }

    #[test]
    fn a_program_without_exit_is_refused_with_the_verifiers_log() {
        let insns = [Insn::mov64_imm(0, 1)];
        let e = prog_load(BPF_PROG_TYPE_SOCKET_FILTER, 0, &insns, LICENSE).unwrap_err();
        if unprivileged(&e) {
            return;
        }
        let l = load_error(&e).unwrap_or_else(|| panic!("no verifier log: {e:?}"));
        assert_eq!(l.errno, libc::EINVAL);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // "last insn is not an exit or jmp" (kernel/bpf/verifier.c), then
        // the statistics line.
        assert!(l.reason().is_some_and(|r| r.contains("exit")), "{}", l.log);
        assert!(e.to_string().contains("verifier: "), "{e}");
    }

    #[test]
    fn the_maps_the_steering_needs_are_made() {
        let array = match map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4) {
            Err(e) if unprivileged(&e) => return,
            r => r.unwrap(),
        };
        assert!(crate::is_cloexec(array.as_fd()).unwrap());
        for value in [4, 8] {
            map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, value, 4)
                .unwrap_or_else(|e| panic!("sockarray with {value}-byte values: {e}"));
        }
        // A sockarray's key is a u32 index: anything else is refused.
        let e = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 8, 8, 4).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
}
