//! Planning an inline hook on x86-64: which first bytes of a function a 5-byte
//! `jmp rel32` may replace, and how those bytes run again elsewhere.
//!
//! Why this exists: a program that carries OpenSSL inside its own executable (node)
//! calls `SSL_write` directly, so symbol interposition never sees its plaintext. The
//! hooker in `hooks::inline` overwrites the function's first instructions with a jump
//! to a stub; the instructions it displaced are copied into a *trampoline* that then
//! jumps back behind the patch, and the trampoline is the "real function" for the shim.
//!
//! This module is pure (bytes in, bytes out) so that unit tests can run it on real
//! prologues without patching anything. It refuses, rather than guesses, whenever the
//! move could change what the program does:
//! - any instruction of the function cannot be decoded (the symbol size is wrong, or
//!   the function holds data);
//! - a direct branch anywhere in the function lands inside the bytes the patch covers
//!   (they would execute half an instruction of our jump), or on the function's first
//!   byte (a self tail call would be captured twice);
//! - an indirect jump in the function (a jump table may land anywhere);
//! - a displaced instruction depends on where it runs and cannot be rewritten
//!   (`loop`, `jrcxz`, `xbegin`, far or indirect branches, `ret`...), or its rewritten
//!   displacement does not reach its target from the trampoline.
//!
//! A leading `endbr64` is kept in place (indirect callers land on it under CET) and the
//! patch goes right after it.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, OpKind};

/// Length of `jmp rel32`, the patch written over the function's first instructions.
pub const JMP_REL32_LEN: usize = 5;
/// `endbr64`: kept where it is; the patch follows it.
pub const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// Room for one trampoline: `endbr64`, the rewritten instructions, `jmp [rip+0]` and
/// its 8-byte target. Displaced instructions are at most 5 (one byte each at least,
/// and the last one starts before byte 5), each at most 15 bytes as rewritten.
pub const TRAMPOLINE_MAX: usize = 4 + 5 * 15 + ABS_JMP_LEN;
/// Room for one entry stub: `endbr64` then an absolute jump to the handler.
pub const ENTRY_LEN: usize = 4 + ABS_JMP_LEN;
/// `jmp qword [rip+0]` followed by the 8-byte address it jumps to.
const ABS_JMP_LEN: usize = 6 + 8;
/// Most displaced instructions (5 bytes need at most 5 instructions).
const MAX_DISPLACED: usize = JMP_REL32_LEN;

/// Why a function is not hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The function is shorter than the patch.
    TooShort,
    /// The bytes at `offset` do not decode to an instruction that ends inside the
    /// function.
    Undecodable { offset: usize },
    /// A branch at `from` lands at `to`, inside the patched bytes or on the first byte.
    BranchIntoPatch { from: usize, to: usize },
    /// An indirect jump at `offset`: its targets are unknown.
    IndirectJump { offset: usize },
    /// The displaced instruction at `offset` cannot run from another address.
    Unrelocatable { offset: usize },
    /// A rewritten displacement (or the patch's jump) does not fit in 32 bits.
    OutOfReach,
}

/// How one displaced instruction is moved to the trampoline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Position-independent: copied byte for byte.
    Copy,
    /// A RIP-relative memory operand: copied with its 32-bit displacement (at
    /// `disp_at` within the instruction) rewritten to reach `target` from the new place.
    RipRelative { disp_at: usize, target: u64 },
    /// `jcc` (short or near), re-encoded as `0f 8x rel32`.
    Jcc { cc: u8, target: u64 },
    /// `jmp` (short or near), re-encoded as `e9 rel32`.
    Jmp { target: u64 },
    /// `call rel32`, re-encoded as `e8 rel32`.
    Call { target: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Displaced {
    /// Offset from the function's start.
    offset: usize,
    len: usize,
    how: Move,
}

/// The plan for one function: where the patch goes and what it displaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prologue {
    /// Where the patch starts, from the function's start: 0, or 4 after `endbr64`.
    pub patch_offset: usize,
    /// How many bytes the patch covers (whole instructions, at least 5).
    pub displaced_len: usize,
    insns: [Option<Displaced>; MAX_DISPLACED],
}

/// Decodes the whole function `code` (its `.dynsym` size), which lives at `addr`, and
/// plans the patch.
pub fn analyze(code: &[u8], addr: u64) -> Result<Prologue, Refusal> {
    let patch_offset = if code.starts_with(&ENDBR64) { 4 } else { 0 };
    if code.len() < patch_offset + JMP_REL32_LEN {
        return Err(Refusal::TooShort);
    }
    let mut insns = [None; MAX_DISPLACED];
    let mut displaced_len = 0;
    let mut n = 0;
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut insn);
        if insn.is_invalid() || offset + insn.len() > code.len() {
            return Err(Refusal::Undecodable { offset });
        }
        if insn.flow_control() == FlowControl::IndirectBranch {
            return Err(Refusal::IndirectJump { offset });
        }
        if offset >= patch_offset && offset < patch_offset + JMP_REL32_LEN {
            let how = moving(&insn, &decoder, offset)?;
            insns[n] = Some(Displaced {
                offset,
                len: insn.len(),
                how,
            });
            n += 1;
            displaced_len = offset + insn.len() - patch_offset;
        }
    }
    // The check of branch targets needs the displaced length, known only now.
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut insn);
        if let Some(to) = direct_target(&insn) {
            let to = to.wrapping_sub(addr);
            // Byte 0 counts too: a self tail call would run the hook twice.
            if to < (patch_offset + displaced_len) as u64 {
                return Err(Refusal::BranchIntoPatch {
                    from: offset,
                    to: to as usize,
                });
            }
        }
    }
    Ok(Prologue {
        patch_offset,
        displaced_len,
        insns,
    })
}

/// The target of a direct near branch (`jmp`, `jcc`, `call`, `loop`, `jrcxz`,
/// `xbegin`), if `insn` is one.
fn direct_target(insn: &Instruction) -> Option<u64> {
    let near = insn.op_count() > 0
        && matches!(
            insn.op0_kind(),
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
        );
    near.then(|| insn.near_branch_target())
}

/// How a displaced instruction is moved, or why it cannot be.
fn moving(insn: &Instruction, decoder: &Decoder<'_>, offset: usize) -> Result<Move, Refusal> {
    let unrelocatable = Err(Refusal::Unrelocatable { offset });
    match insn.flow_control() {
        FlowControl::Next => {
            if insn.is_ip_rel_memory_operand() {
                let offsets = decoder.get_constant_offsets(insn);
                if offsets.displacement_size() != 4 {
                    return unrelocatable;
                }
                Ok(Move::RipRelative {
                    disp_at: offsets.displacement_offset(),
                    target: insn.ip_rel_memory_address(),
                })
            } else {
                Ok(Move::Copy)
            }
        }
        FlowControl::ConditionalBranch if insn.is_jcc_short_or_near() => {
            // Plain encodings only: `7x rel8` or `0f 8x rel32`, no prefixes.
            let cc = insn.condition_code() as u8;
            if cc == 0 || !matches!(insn.len(), 2 | 6) {
                return unrelocatable;
            }
            Ok(Move::Jcc {
                cc: cc - 1,
                target: insn.near_branch_target(),
            })
        }
        FlowControl::UnconditionalBranch if insn.is_jmp_short_or_near() => {
            if !matches!(insn.len(), 2 | 5) {
                return unrelocatable;
            }
            Ok(Move::Jmp {
                target: insn.near_branch_target(),
            })
        }
        FlowControl::Call if insn.is_call_near() && insn.len() == 5 => Ok(Move::Call {
            target: insn.near_branch_target(),
        }),
        _ => unrelocatable,
    }
}

/// The displacement from the end of an instruction at `end` to `target`, if it fits.
fn rel32(end: u64, target: u64) -> Option<i32> {
    i32::try_from(target.wrapping_sub(end) as i64).ok()
}

impl Prologue {
    /// Writes the trampoline for the function at `fn_addr` (whose bytes are `code`),
    /// to run from address `at`: `endbr64`, the displaced instructions rewritten for
    /// their new place, then `jmp [rip+0]` back to the first byte after the patch.
    /// Returns its length.
    pub fn trampoline(
        &self,
        code: &[u8],
        fn_addr: u64,
        at: u64,
        out: &mut [u8; TRAMPOLINE_MAX],
    ) -> Result<usize, Refusal> {
        let mut w = 0;
        let mut put = |bytes: &[u8], w: &mut usize| {
            out[*w..*w + bytes.len()].copy_from_slice(bytes);
            *w += bytes.len();
        };
        put(&ENDBR64, &mut w);
        for d in self.insns.iter().flatten() {
            let src = code
                .get(d.offset..d.offset + d.len)
                .ok_or(Refusal::Undecodable { offset: d.offset })?;
            let here = at + w as u64;
            match d.how {
                Move::Copy => put(src, &mut w),
                Move::RipRelative { disp_at, target } => {
                    let disp = rel32(here + d.len as u64, target).ok_or(Refusal::OutOfReach)?;
                    let mut insn = [0u8; 15];
                    insn[..d.len].copy_from_slice(src);
                    insn[disp_at..disp_at + 4].copy_from_slice(&disp.to_le_bytes());
                    put(&insn[..d.len], &mut w);
                }
                Move::Jcc { cc, target } => {
                    let disp = rel32(here + 6, target).ok_or(Refusal::OutOfReach)?;
                    put(&[0x0f, 0x80 | cc], &mut w);
                    put(&disp.to_le_bytes(), &mut w);
                }
                Move::Jmp { target } | Move::Call { target } => {
                    let op = if matches!(d.how, Move::Call { .. }) {
                        0xe8
                    } else {
                        0xe9
                    };
                    let disp = rel32(here + 5, target).ok_or(Refusal::OutOfReach)?;
                    put(&[op], &mut w);
                    put(&disp.to_le_bytes(), &mut w);
                }
            }
        }
        let back = fn_addr + (self.patch_offset + self.displaced_len) as u64;
        put(&absolute_jump(back), &mut w);
        Ok(w)
    }

    /// The bytes written at `fn_addr + patch_offset`: `jmp rel32` to `entry`, then
    /// `int3` over the rest of the displaced bytes (no branch lands there).
    pub fn patch(&self, fn_addr: u64, entry: u64) -> Result<([u8; 15 * 5], usize), Refusal> {
        let site = fn_addr + self.patch_offset as u64;
        let disp = rel32(site + JMP_REL32_LEN as u64, entry).ok_or(Refusal::OutOfReach)?;
        let mut out = [0xccu8; 15 * 5];
        out[0] = 0xe9;
        out[1..5].copy_from_slice(&disp.to_le_bytes());
        Ok((out, self.displaced_len))
    }
}

/// `endbr64; jmp [rip+0]; dq handler`: the stub the patch jumps to, which goes on to
/// the handler wherever it was loaded (a shared library is usually > 2 GiB away).
pub fn entry_stub(handler: u64) -> [u8; ENTRY_LEN] {
    let mut out = [0u8; ENTRY_LEN];
    out[..4].copy_from_slice(&ENDBR64);
    out[4..].copy_from_slice(&absolute_jump(handler));
    out
}

/// `jmp qword [rip+0]` with its target right after it.
fn absolute_jump(target: u64) -> [u8; ABS_JMP_LEN] {
    let mut out = [0u8; ABS_JMP_LEN];
    out[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    out[6..].copy_from_slice(&target.to_le_bytes());
    out
}

#[cfg(test)]
mod tests;
