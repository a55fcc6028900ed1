//! A small eBPF assembler: the steering programs of the `reuseport-ebpf-*`
//! models are built here, in Rust, and loaded with bpf(2), so the harness
//! needs no clang, LLVM, libbpf or bpftool at build or run time.
//!
//! Why it exists: a program is a few dozen 8-byte instructions, and
//! writing their encodings by hand is where mistakes hide (a jump offset
//! one off, a register in the wrong nibble). [`Asm`] names the registers
//! and the operations, resolves jumps to labels when the program is
//! finished (an offset counts instructions after the jump), and emits the
//! 16-byte `ld_imm64` that carries a map's descriptor (src_reg
//! BPF_PSEUDO_MAP_FD, which the kernel replaces with the map's address at
//! load time). Encodings follow the kernel's
//! Documentation/bpf/standardization/instruction-set.rst.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};

use sys::bpf::Insn;

/// A register: r0 holds return values, r1-r5 arguments (clobbered by a
/// call), r6-r9 survive calls, r10 is the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
/// The frame pointer: the stack is the 512 bytes below it.
pub const R10: Reg = Reg(10);

// Instruction classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
// Sizes and modes of loads and stores.
const W: u8 = 0x00;
const DW: u8 = 0x18;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
// Source: an immediate or a register.
const K: u8 = 0x00;
const X: u8 = 0x08;
/// BPF_FETCH: an atomic operation also returns the old value.
const FETCH: i32 = 0x01;
/// src_reg of an `ld_imm64` whose immediate is a map's descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// An arithmetic operation (64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
}

/// A jump condition (unsigned comparisons; 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Ne = 0x50,
    Lt = 0xa0,
    Le = 0xb0,
}

/// Kernel helper functions, by their number in `enum bpf_func_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// `void *bpf_map_lookup_elem(map, key)`: a pointer to the value or NULL.
    MapLookupElem = 1,
    /// `long bpf_sk_select_reuseport(reuse_md, map, key, flags)`.
    SkSelectReuseport = 82,
}

/// A program being written: instructions, labels and pending jumps.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: HashMap<String, usize>,
    /// (index of a jump, the label it goes to).
    jumps: Vec<(usize, String)>,
    /// A label defined twice (reported by [`Asm::finish`]).
    twice: Option<String>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Asm {
        self.insns.push(Insn::new(code, dst.0, src.0, off, imm));
        self
    }

    /// `dst op= imm`.
    pub fn alu_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Asm {
        self.push(ALU64 | op as u8 | K, dst, R0, 0, imm)
    }

    /// `dst op= src`.
    pub fn alu_reg(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Asm {
        self.push(ALU64 | op as u8 | X, dst, src, 0, 0)
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.alu_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov_reg(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.alu_reg(Alu::Mov, dst, src)
    }

    /// `dst = the map` (two instruction slots).
    pub fn ld_map_fd(&mut self, dst: Reg, map: BorrowedFd<'_>) -> &mut Asm {
        self.push(LD | IMM | DW, dst, Reg(PSEUDO_MAP_FD), 0, map.as_raw_fd());
        self.push(0, R0, R0, 0, 0)
    }

    /// `dst = *(u32 *)(base + off)`.
    pub fn ldx_w(&mut self, dst: Reg, base: Reg, off: i16) -> &mut Asm {
        self.push(LDX | MEM | W, dst, base, off, 0)
    }

    /// `dst = *(u64 *)(base + off)`.
    pub fn ldx_dw(&mut self, dst: Reg, base: Reg, off: i16) -> &mut Asm {
        self.push(LDX | MEM | DW, dst, base, off, 0)
    }

    /// `*(u32 *)(base + off) = imm`.
    pub fn st_w(&mut self, base: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(ST | MEM | W, base, R0, off, imm)
    }

    /// `*(u32 *)(base + off) = src`.
    pub fn stx_w(&mut self, base: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(STX | MEM | W, base, src, off, 0)
    }

    /// `src = atomic_fetch_add((u64 *)(base + off), src)`: adds and returns
    /// the old value in `src` (Linux 5.12).
    pub fn fetch_add_dw(&mut self, base: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(STX | ATOMIC | DW, base, src, off, Alu::Add as i32 | FETCH)
    }

    /// Calls a kernel helper (arguments in r1-r5, result in r0).
    pub fn call(&mut self, helper: Helper) -> &mut Asm {
        self.push(JMP | 0x80, R0, R0, 0, helper as i32)
    }

    /// `return r0`.
    pub fn exit(&mut self) -> &mut Asm {
        self.push(JMP | 0x90, R0, R0, 0, 0)
    }

    /// `goto label`.
    pub fn ja(&mut self, label: &str) -> &mut Asm {
        self.jumps.push((self.insns.len(), label.to_owned()));
        self.push(JMP, R0, R0, 0, 0)
    }

    /// `if dst cond imm goto label`.
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: &str) -> &mut Asm {
        self.jumps.push((self.insns.len(), label.to_owned()));
        self.push(JMP | cond as u8 | K, dst, R0, 0, imm)
    }

    /// `if dst cond src goto label`.
    pub fn jmp_reg(&mut self, cond: Cond, dst: Reg, src: Reg, label: &str) -> &mut Asm {
        self.jumps.push((self.insns.len(), label.to_owned()));
        self.push(JMP | cond as u8 | X, dst, src, 0, 0)
    }

    /// Names the next instruction.
    pub fn label(&mut self, name: &str) -> &mut Asm {
        if self.labels.insert(name.to_owned(), self.insns.len()).is_some() {
            self.twice.get_or_insert_with(|| name.to_owned());
        }
        self
    }

    /// The program, its jumps resolved; an error names a label that is
    /// missing, defined twice, or out of a jump's reach.
    pub fn finish(&self) -> Result<Vec<Insn>, String> {
        if let Some(l) = &self.twice {
            return Err(format!("label '{l}' is defined twice"));
        }
        let mut out = self.insns.clone();
        for (at, label) in &self.jumps {
            let at = *at;
            let to = *self.labels.get(label).ok_or_else(|| format!("no label '{label}'"))?;
            let off = to as i64 - (at as i64 + 1);
            out[at].off = i16::try_from(off).map_err(|_| format!("label '{label}' is out of a jump's reach"))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, dst, src, off, imm) of each instruction.
    fn fields(p: &[Insn]) -> Vec<(u8, u8, u8, i16, i32)> {
        p.iter()
            .map(|i| (i.code, i.regs & 0x0f, i.regs >> 4, i.off, i.imm))
            .collect()
    }

    #[test]
    fn encodings_match_the_kernel_s() {
        let p = Asm::new()
            .mov_imm(R0, 1)
            .mov_reg(R2, R10)
            .alu_imm(Alu::Add, R2, -4)
            .alu_imm(Alu::Mod, R1, 3)
            .st_w(R10, -4, 0)
            .stx_w(R10, -8, R6)
            .ldx_w(R3, R1, 8)
            .ldx_dw(R4, R0, 16)
            .fetch_add_dw(R0, 0, R1)
            .call(Helper::MapLookupElem)
            .exit()
            .finish()
            .unwrap();
        assert_eq!(
            fields(&p),
            [
                (0xb7, 0, 0, 0, 1),  // mov64 r0, 1
                (0xbf, 2, 10, 0, 0), // mov64 r2, r10
                (0x07, 2, 0, 0, -4), // add64 r2, -4
                (0x97, 1, 0, 0, 3),  // mod64 r1, 3
                (0x62, 10, 0, -4, 0),
                (0x63, 10, 6, -8, 0),
                (0x61, 3, 1, 8, 0),
                (0x79, 4, 0, 16, 0),
                (0xdb, 0, 1, 0, 1), // atomic64 fetch_add
                (0x85, 0, 0, 0, 1),
                (0x95, 0, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn jumps_go_to_their_labels_forward_and_back() {
        let p = Asm::new()
            .label("top")
            .jmp_imm(Cond::Eq, R0, 0, "end") // 0 -> 3: off 2
            .alu_imm(Alu::Sub, R0, 1)
            .ja("top") // 2 -> 0: off -3
            .label("end")
            .jmp_reg(Cond::Lt, R1, R2, "end") // 3 -> 3: off -1
            .exit()
            .finish()
            .unwrap();
        let f = fields(&p);
        assert_eq!(f[0], (0x15, 0, 0, 2, 0));
        assert_eq!(f[2], (0x05, 0, 0, -3, 0));
        assert_eq!(f[3], (0xad, 1, 2, -1, 0));
    }

    #[test]
    fn a_map_descriptor_takes_two_slots_and_counts_in_jumps() {
        let fd = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let p = Asm::new()
            .ja("after")
            .ld_map_fd(R1, fd.as_fd())
            .label("after")
            .exit()
            .finish()
            .unwrap();
        let f = fields(&p);
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].3, 2, "the jump skips both slots");
        assert_eq!(f[1], (0x18, 1, 1, 0, fd.as_raw_fd()));
        assert_eq!(f[2], (0, 0, 0, 0, 0));
    }

    #[test]
    fn bad_labels_are_named() {
        assert_eq!(Asm::new().ja("nowhere").finish().unwrap_err(), "no label 'nowhere'");
        let twice = Asm::new().label("a").exit().label("a").finish().unwrap_err();
        assert_eq!(twice, "label 'a' is defined twice");
        let mut far = Asm::new();
        far.ja("end");
        for _ in 0..40_000 {
            far.mov_imm(R0, 0);
        }
        far.label("end").exit();
        assert!(far.finish().unwrap_err().contains("out of a jump's reach"));
    }
}
