//! The planner on real prologues (node 20's statically linked OpenSSL, Debian's
//! libssl 3) and on synthetic ones for each refusal.

use super::*;

const NODE20_SSL_WRITE: &[u8] =
    include_bytes!("../../tests/payloads/prologues/node20_SSL_write.bin");
const NODE20_SSL_WRITE_EX: &[u8] =
    include_bytes!("../../tests/payloads/prologues/node20_SSL_write_ex.bin");
const NODE20_SSL_READ: &[u8] = include_bytes!("../../tests/payloads/prologues/node20_SSL_read.bin");
const NODE20_SSL_READ_EX: &[u8] =
    include_bytes!("../../tests/payloads/prologues/node20_SSL_read_ex.bin");
const NODE20_SSL_FREE: &[u8] = include_bytes!("../../tests/payloads/prologues/node20_SSL_free.bin");
const LIBSSL3_SSL_WRITE: &[u8] =
    include_bytes!("../../tests/payloads/prologues/libssl3_SSL_write.bin");
const LIBSSL3_SSL_READ_EX: &[u8] =
    include_bytes!("../../tests/payloads/prologues/libssl3_SSL_read_ex.bin");
const LIBSSL3_SSL_FREE: &[u8] =
    include_bytes!("../../tests/payloads/prologues/libssl3_SSL_free.bin");

/// Where node 20 maps these functions (non-PIE), and a stub page below its text.
const NODE_SSL_WRITE_AT: u64 = 0x1a6_b940;
const STUB_AT: u64 = 0x20_0000;

/// One instruction as the CPU sees it: what it does, independent of where it sits.
#[derive(Debug, PartialEq, Eq)]
struct Meaning {
    mnemonic: iced_x86::Mnemonic,
    branch_target: Option<u64>,
    rip_target: Option<u64>,
}

fn meanings(code: &[u8], ip: u64) -> Vec<Meaning> {
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    d.iter()
        .map(|i| Meaning {
            mnemonic: i.mnemonic(),
            branch_target: direct_target(&i),
            rip_target: i
                .is_ip_rel_memory_operand()
                .then(|| i.ip_rel_memory_address()),
        })
        .collect()
}

/// Plans `code` at `addr`, builds its trampoline at `at`, and checks that the
/// trampoline does what the displaced bytes did, then jumps back behind the patch.
fn plan_and_check(code: &[u8], addr: u64, at: u64) -> (Prologue, Vec<u8>) {
    let p = analyze(code, addr).expect("planned");
    let mut out = [0u8; TRAMPOLINE_MAX];
    let n = p.trampoline(code, addr, at, &mut out).expect("trampoline");
    let tramp = out[..n].to_vec();
    assert_eq!(&tramp[..4], &ENDBR64);
    let body = &tramp[4..n - ABS_JMP_LEN];
    let start = p.patch_offset;
    let original = meanings(&code[start..start + p.displaced_len], addr + start as u64);
    assert_eq!(meanings(body, at + 4), original);
    let back = u64::from_le_bytes(tramp[n - 8..].try_into().unwrap());
    assert_eq!(&tramp[n - ABS_JMP_LEN..n - 8], &[0xff, 0x25, 0, 0, 0, 0]);
    assert_eq!(back, addr + (p.patch_offset + p.displaced_len) as u64);
    (p, tramp)
}

#[test]
fn node20_ssl_write_displaces_push_mov_push() {
    let (p, tramp) = plan_and_check(NODE20_SSL_WRITE, NODE_SSL_WRITE_AT, STUB_AT);
    assert_eq!(p.patch_offset, 0);
    // push rbp; mov rbp,rsp; push r14
    assert_eq!(p.displaced_len, 6);
    assert_eq!(&tramp[4..10], &[0x55, 0x48, 0x89, 0xe5, 0x41, 0x56]);
}

#[test]
fn node20_all_four_and_free_are_hookable() {
    for (name, code, addr, len) in [
        ("SSL_write_ex", NODE20_SSL_WRITE_EX, 0x1a6_bb20, 6),
        ("SSL_read", NODE20_SSL_READ, 0x1a6_b180, 6),
        ("SSL_read_ex", NODE20_SSL_READ_EX, 0x1a6_b340, 6),
        ("SSL_free", NODE20_SSL_FREE, 0x1a6_a150, 5),
    ] {
        let (p, _) = plan_and_check(code, addr, STUB_AT);
        assert_eq!(p.displaced_len, len, "{name}");
    }
}

#[test]
fn node20_ssl_free_short_jcc_becomes_near() {
    // test rdi,rdi; je +0x16 (to the `ret` at 0x1b): the je moves as `0f 84 rel32`.
    let addr = 0x1a6_a150;
    let (_, tramp) = plan_and_check(NODE20_SSL_FREE, addr, STUB_AT);
    assert_eq!(&tramp[4..7], &[0x48, 0x85, 0xff]);
    assert_eq!(&tramp[7..9], &[0x0f, 0x84]);
    let disp = i32::from_le_bytes(tramp[9..13].try_into().unwrap());
    assert_eq!((STUB_AT + 13).wrapping_add(disp as i64 as u64), addr + 0x1b);
}

#[test]
fn libssl3_prologues() {
    // sub rsp,0x18; mov rax,fs:[0x28]: segment-relative, not RIP-relative: copied.
    let (p, _) = plan_and_check(LIBSSL3_SSL_WRITE, 0x7f00_0003_5980, 0x7f00_1000_0000);
    assert_eq!(p.displaced_len, 13);
    // sub rsp,8; call rel32: the call is re-aimed from the trampoline.
    let (p, tramp) = plan_and_check(LIBSSL3_SSL_READ_EX, 0x7f00_0003_54c0, 0x7f00_1000_0000);
    assert_eq!(p.displaced_len, 9);
    assert_eq!(tramp[8], 0xe8);
    // SSL_free (937 bytes) is planned or refused, never misread.
    match analyze(LIBSSL3_SSL_FREE, 0x7f00_0003_b350) {
        Ok(_) => {
            plan_and_check(LIBSSL3_SSL_FREE, 0x7f00_0003_b350, 0x7f00_1000_0000);
        }
        Err(e) => assert!(matches!(
            e,
            Refusal::IndirectJump { .. } | Refusal::BranchIntoPatch { .. }
        )),
    }
}

#[test]
fn endbr64_stays_and_rip_relative_operand_is_rewritten() {
    // endbr64; mov rax,[rip+0x1000]; ret
    let code = [
        0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0xc3,
    ];
    let addr = 0x40_0000;
    let (p, tramp) = plan_and_check(&code, addr, STUB_AT);
    assert_eq!(p.patch_offset, 4);
    assert_eq!(p.displaced_len, 7);
    assert_eq!(&tramp[4..7], &[0x48, 0x8b, 0x05]);
    let disp = i32::from_le_bytes(tramp[7..11].try_into().unwrap());
    assert_eq!(
        (STUB_AT + 11).wrapping_add(disp as i64 as u64),
        addr + 11 + 0x1000
    );
    // The patch goes after endbr64 and covers the whole mov.
    let (bytes, len) = p.patch(addr, STUB_AT + 0x100).unwrap();
    assert_eq!(len, 7);
    assert_eq!(bytes[0], 0xe9);
    let disp = i32::from_le_bytes(bytes[1..5].try_into().unwrap());
    assert_eq!(
        (addr + 4 + 5).wrapping_add(disp as i64 as u64),
        STUB_AT + 0x100
    );
    assert_eq!(&bytes[5..7], &[0xcc, 0xcc]);
}

#[test]
fn rip_relative_operand_out_of_reach_is_refused() {
    let code = [0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0xc3];
    let p = analyze(&code, 0x40_0000).unwrap();
    let mut out = [0u8; TRAMPOLINE_MAX];
    assert_eq!(
        p.trampoline(&code, 0x40_0000, 0x7f00_0000_0000, &mut out),
        Err(Refusal::OutOfReach)
    );
    assert_eq!(
        p.patch(0x40_0000, 0x7f00_0000_0000),
        Err(Refusal::OutOfReach)
    );
}

#[test]
fn branch_into_displaced_bytes_is_refused() {
    // push rbp; mov rbp,rsp; L: dec edi; jnz L(-4 → offset 1? no: to offset 4); pop rbp; ret
    // 55 | 48 89 e5 | ff cf | 75 fc | 5d | c3   — jnz goes to offset 4 (dec edi),
    // inside the 6 displaced bytes.
    let code = [0x55, 0x48, 0x89, 0xe5, 0xff, 0xcf, 0x75, 0xfc, 0x5d, 0xc3];
    assert_eq!(
        analyze(&code, 0x1000),
        Err(Refusal::BranchIntoPatch { from: 6, to: 4 })
    );
}

#[test]
fn self_tail_call_to_first_byte_is_refused() {
    // endbr64; push rbp; mov rbp,rsp; pop rbp; jmp <start>
    let code = [
        0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xeb, 0xf5,
    ];
    assert_eq!(
        analyze(&code, 0x1000),
        Err(Refusal::BranchIntoPatch { from: 9, to: 0 })
    );
}

#[test]
fn indirect_jump_anywhere_in_the_function_is_refused() {
    // push rbp; mov rbp,rsp; push r14; ...; jmp rax
    let code = [0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x90, 0xff, 0xe0];
    assert_eq!(
        analyze(&code, 0x1000),
        Err(Refusal::IndirectJump { offset: 7 })
    );
}

#[test]
fn position_dependent_displaced_instructions_are_refused() {
    // xor eax,eax; ret; nop...: `ret` inside the patch
    assert_eq!(
        analyze(&[0x31, 0xc0, 0xc3, 0x90, 0x90, 0x90], 0x1000),
        Err(Refusal::Unrelocatable { offset: 2 })
    );
    // jrcxz +2 in the first bytes
    assert_eq!(
        analyze(&[0xe3, 0x02, 0x90, 0x90, 0x90, 0x90, 0xc3], 0x1000),
        Err(Refusal::Unrelocatable { offset: 0 })
    );
    // call [rip+0] (indirect) in the first bytes
    assert_eq!(
        analyze(&[0xff, 0x15, 0, 0, 0, 0, 0xc3], 0x1000),
        Err(Refusal::Unrelocatable { offset: 0 })
    );
}

#[test]
fn short_or_garbled_functions_are_refused() {
    assert_eq!(analyze(&[0xc3], 0x1000), Err(Refusal::TooShort));
    assert_eq!(
        analyze(&[0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xc3], 0x1000),
        Err(Refusal::TooShort)
    );
    // push rbp; then a mov whose imm32 runs past the symbol's end
    assert_eq!(
        analyze(&[0x55, 0x90, 0x90, 0x90, 0x90, 0xb8, 0x01, 0x02], 0x1000),
        Err(Refusal::Undecodable { offset: 5 })
    );
}

#[test]
fn entry_stub_jumps_to_the_handler() {
    let e = entry_stub(0x7f12_3456_789a);
    assert_eq!(&e[..4], &ENDBR64);
    assert_eq!(&e[4..10], &[0xff, 0x25, 0, 0, 0, 0]);
    assert_eq!(
        u64::from_le_bytes(e[10..].try_into().unwrap()),
        0x7f12_3456_789a
    );
}
