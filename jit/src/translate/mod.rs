//! Decoded block -> Cranelift IR.
//!
//! The generated function is `extern "C" fn(*mut JitCtx) -> u64`. It runs
//! the block's instructions in order, with the interpreter's block-loop
//! contract (`Cpu::exec_block`):
//!
//! - The code is entered (by `CompiledBlock::run` or the chain stub) only
//!   when the instruction budget covers the whole block and no stale
//!   `end_block` is set; otherwise the interpreter runs the block. So the
//!   compiled path itself never needs a budget check.
//! - Instructions in [`InlineForm`] are emitted as IR. Guest registers live
//!   in Cranelift variables, loaded on first use and written back (only
//!   those changed) before every helper call and at every exit. RIP and the
//!   instruction count are kept as "memory value + constant" and written at
//!   the same points. The lazy-flags record of the last inline flag-setting
//!   instruction is kept in variables and written only when something may
//!   read it from memory, so a record overwritten later in the block is
//!   never stored; conditions read from it are computed directly (CMP + Jcc
//!   is a compare and a branch).
//! - An inline instruction that can fail a guard (memory access missing
//!   the TLB or touching MMIO or code, segment limit, page straddle, stack
//!   size, shift by CL = 0...) has one slow path: write back the state as
//!   it was before the instruction and run it and the rest of the block
//!   with `Helpers::rest`, the interpreter's handlers. Guards all come
//!   before the instruction changes anything, so that is exact, faults
//!   included. The slow path never joins the fast path again.
//! - Every other instruction is a call to `Helpers::step`.

mod chain;
mod flags;
mod mem;
mod ops;
mod region;
mod sse;

pub(crate) use chain::Pick;
pub use region::region_members;
pub use sse::{FpOp, IntOp, SseOp};

use crate::runtime::{ip_mask, off};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{
    AbiParam, Block as IrBlock, Function, InstBuilder, MemFlagsData, SigRef, Signature, Type,
    UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use iced_x86::{Mnemonic, OpKind as IOp};
use leap_cpu::blocks::Block;
use leap_cpu::insn::{Insn, OpKind, Operand};
use leap_cpu::mmu::{TAG_INDIRECT, TAG_USER, TAG_VALID};
use leap_cpu::state::{CR0_AM, FLAG_AC};

/// A bit of a TLB tag's page-offset part that no entry sets: the entry
/// check (`check_tag_bits`) sets it for #AC checking or a segment that is
/// no longer flat, so the bits differ from the ones the block wants.
const NO_TAG_BIT: u64 = 8;
const _: () = assert!(NO_TAG_BIT & (TAG_VALID | TAG_USER | TAG_INDIRECT) == 0);
const _: () = assert!(NO_TAG_BIT < 0x1000);

/// Two-operand ALU instructions emitted inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Or,
    And,
    Sub,
    Xor,
    Cmp,
    Test,
    Adc,
    Sbb,
}

/// Source operand of a two-operand instruction.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    Reg(Operand),
    Imm(u64),
    /// The instruction's memory operand.
    Mem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftOp {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
}

/// Shift count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// An immediate, already masked as the hardware does.
    Imm(u8),
    Cl,
}

/// The instruction forms the translator emits as IR. Forms that touch
/// memory inline the TLB hit and fall back to the interpreter's handler.
#[derive(Clone, Copy, Debug)]
pub enum InlineForm {
    MovRR,
    MovRI,
    /// MOV reg, [mem].
    Load,
    /// MOV [mem], reg/imm.
    Store(Src),
    /// ALU with a register destination (the source may be memory).
    Alu(AluOp, Src),
    /// ALU with a memory destination (read-modify-write, or a read for
    /// CMP/TEST).
    AluMem(AluOp, Src),
    /// INC/DEC/NEG/NOT of a register or memory.
    Inc,
    Dec,
    Neg,
    Not,
    Lea,
    /// MOVZX (false) / MOVSX, MOVSXD (true).
    Movx(bool),
    /// PUSH reg/imm/mem, POP reg.
    Push,
    Pop,
    /// LEAVE: ESP from EBP, then POP EBP.
    Leave,
    Setcc,
    Cmovcc,
    /// IMUL r, r/m and IMUL r, r/m, imm.
    Imul,
    /// DIV (false) / IDIV (true) r/m of 16, 32 or 64 bits.
    Div(bool),
    /// MUL (false) / IMUL (true) r/m of 16, 32 or 64 bits, one operand.
    MulWide(bool),
    /// SHL/SHR/SAR/ROL/ROR of a register.
    Shift(ShiftOp, Count),
    /// XCHG reg, reg.
    Xchg,
    Nop,
    /// JMP rel, last in its block.
    Jmp,
    /// Jcc rel, last in its block.
    Jcc,
    /// CALL rel (near), last in its block.
    Call,
    /// RET / RET imm16 (near), last in its block.
    Ret,
    /// JMP r/m (near), last in its block.
    JmpInd,
    /// CALL r/m (near), last in its block.
    CallInd,
    /// The SSE moves and arithmetic of [`SseOp`].
    Sse(SseOp),
}

fn gpr_operand(o: &Operand) -> bool {
    o.kind == OpKind::Reg && matches!(o.size, 1 | 2 | 4 | 8) && (!o.hi || o.size == 1)
}

fn near_branch(insn: &Insn) -> bool {
    matches!(
        insn.inst.op0_kind(),
        IOp::NearBranch16 | IOp::NearBranch32 | IOp::NearBranch64
    )
}

/// A memory operand the inline access path handles.
fn mem_operand(insn: &Insn, o: &Operand) -> bool {
    o.kind == OpKind::Mem
        && matches!(o.size, 1 | 2 | 4 | 8)
        && insn.mem.seg < 6
        && matches!(insn.asize, 2 | 4 | 8)
}

/// Which inline form, if any, `insn` is. `last` says it ends the block
/// (branches are inlined only there).
pub fn inline_form(insn: &Insn, last: bool) -> Option<InlineForm> {
    use Mnemonic::*;
    let d = &insn.op[0];
    let s = &insn.op[1];
    let m = insn.inst.mnemonic();
    let n = insn.inst.op_count();
    let rm = |o: &Operand| gpr_operand(o) || mem_operand(insn, o);
    // The source of a two-operand instruction; memory only when the
    // destination is a register.
    let src = |dst_mem: bool| {
        if gpr_operand(s) && s.size == d.size {
            Some(Src::Reg(*s))
        } else if s.kind == OpKind::Imm {
            Some(Src::Imm(insn.imm))
        } else if !dst_mem && mem_operand(insn, s) && s.size == d.size {
            Some(Src::Mem)
        } else {
            None
        }
    };
    if let Some(op) = sse::form(insn) {
        return Some(InlineForm::Sse(op));
    }
    let stack_op = matches!(insn.osize, 2 | 4 | 8);
    match m {
        Mov if n == 2 && gpr_operand(d) => match src(false)? {
            Src::Reg(_) => Some(InlineForm::MovRR),
            Src::Imm(_) => Some(InlineForm::MovRI),
            Src::Mem => Some(InlineForm::Load),
        },
        Mov if n == 2 && mem_operand(insn, d) => Some(InlineForm::Store(src(true)?)),
        Add | Or | And | Sub | Xor | Cmp | Test | Adc | Sbb if n == 2 => {
            let op = match m {
                Add => AluOp::Add,
                Adc => AluOp::Adc,
                Sbb => AluOp::Sbb,
                Or => AluOp::Or,
                And => AluOp::And,
                Sub => AluOp::Sub,
                Xor => AluOp::Xor,
                Cmp => AluOp::Cmp,
                _ => AluOp::Test,
            };
            if gpr_operand(d) {
                Some(InlineForm::Alu(op, src(false)?))
            } else if mem_operand(insn, d) {
                Some(InlineForm::AluMem(op, src(true)?))
            } else {
                None
            }
        }
        Inc | Dec | Neg | Not if n == 1 && rm(d) => Some(match m {
            Inc => InlineForm::Inc,
            Dec => InlineForm::Dec,
            Neg => InlineForm::Neg,
            _ => InlineForm::Not,
        }),
        Lea if n == 2
            && gpr_operand(d)
            && d.size >= 2
            && s.kind == OpKind::Mem
            && matches!(insn.asize, 2 | 4 | 8) =>
        {
            Some(InlineForm::Lea)
        }
        Movzx | Movsx | Movsxd if n == 2 && gpr_operand(d) && rm(s) && s.size < 8 => {
            Some(InlineForm::Movx(m != Movzx))
        }
        Push if n == 1
            && stack_op
            && ((rm(d) && d.size == insn.osize) || d.kind == OpKind::Imm) =>
        {
            Some(InlineForm::Push)
        }
        Leave if n == 0 && stack_op => Some(InlineForm::Leave),
        Pop if n == 1 && stack_op && gpr_operand(d) && d.size == insn.osize => {
            Some(InlineForm::Pop)
        }
        Seto | Setno | Setb | Setae | Sete | Setne | Setbe | Seta | Sets | Setns | Setp | Setnp
        | Setl | Setge | Setle | Setg
            if n == 1 && rm(d) && d.size == 1 =>
        {
            Some(InlineForm::Setcc)
        }
        Cmovo | Cmovno | Cmovb | Cmovae | Cmove | Cmovne | Cmovbe | Cmova | Cmovs | Cmovns
        | Cmovp | Cmovnp | Cmovl | Cmovge | Cmovle | Cmovg
            if n == 2 && gpr_operand(d) && d.size >= 2 && rm(s) && s.size == d.size =>
        {
            Some(InlineForm::Cmovcc)
        }
        Imul if (n == 2 || (n == 3 && insn.op[2].kind == OpKind::Imm))
            && gpr_operand(d)
            && d.size >= 2
            && rm(s)
            && s.size == d.size =>
        {
            Some(InlineForm::Imul)
        }
        Div | Idiv if n == 1 && rm(d) && d.size >= 2 => Some(InlineForm::Div(m == Idiv)),
        Mul | Imul if n == 1 && rm(d) && d.size >= 2 => Some(InlineForm::MulWide(m == Imul)),
        Shl | Sal | Shr | Sar | Rol | Ror if n == 2 && gpr_operand(d) => {
            let op = match m {
                Shr => ShiftOp::Shr,
                Sar => ShiftOp::Sar,
                Rol => ShiftOp::Rol,
                Ror => ShiftOp::Ror,
                _ => ShiftOp::Shl,
            };
            let cmask = if d.size == 8 { 0x3f } else { 0x1f };
            let count = match s.kind {
                OpKind::Imm => Count::Imm((insn.imm & 0xff) as u8 & cmask),
                OpKind::Reg if s.reg == 1 && !s.hi && s.size == 1 => Count::Cl,
                _ => return None,
            };
            Some(InlineForm::Shift(op, count))
        }
        Xchg if n == 2 && gpr_operand(d) && gpr_operand(s) && s.size == d.size => {
            Some(InlineForm::Xchg)
        }
        Nop => Some(InlineForm::Nop),
        Jmp if last && near_branch(insn) => Some(InlineForm::Jmp),
        Jo | Jno | Jb | Jae | Je | Jne | Jbe | Ja | Js | Jns | Jp | Jnp | Jl | Jge | Jle | Jg
            if last && near_branch(insn) =>
        {
            Some(InlineForm::Jcc)
        }
        Call if last && near_branch(insn) && stack_op => Some(InlineForm::Call),
        // Near forms only (far ones load CS); the operand as wide as the
        // branch, as `h_jmp_ind` / `h_call_ind` read it.
        Jmp if last && insn.inst.is_jmp_near_indirect() && rm(d) && d.size == insn.osize => {
            Some(InlineForm::JmpInd)
        }
        Call if last
            && insn.inst.is_call_near_indirect()
            && stack_op
            && rm(d)
            && d.size == insn.osize =>
        {
            Some(InlineForm::CallInd)
        }
        Ret if last && stack_op && (n == 0 || d.kind == OpKind::Imm) => Some(InlineForm::Ret),
        _ => None,
    }
}

impl InlineForm {
    /// The form may access guest memory (so the block needs the RAM and
    /// TLB pointers).
    fn touches_memory(self, insn: &Insn) -> bool {
        match self {
            InlineForm::Push
            | InlineForm::Pop
            | InlineForm::Leave
            | InlineForm::Call
            | InlineForm::Ret
            | InlineForm::CallInd => true,
            InlineForm::Lea | InlineForm::Nop => false,
            _ => insn.op.iter().any(|o| o.kind == OpKind::Mem),
        }
    }
}

/// What a translation produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslateStats {
    pub insns: usize,
    /// Instructions emitted as IR rather than helper calls.
    pub inline: usize,
    /// The block branches back to its start and runs as a host loop.
    pub looping: bool,
}

/// Builds IR for blocks, for one target's pointer type and calling convention.
pub struct Translator {
    ptr: Type,
    call_conv: CallConv,
    frontend: TargetFrontendConfig,
}

impl Translator {
    pub fn new(isa: &dyn TargetIsa) -> Self {
        Translator {
            ptr: isa.pointer_type(),
            call_conv: isa.default_call_conv(),
            frontend: isa.frontend_config(),
        }
    }

    /// `fn(ctx: *mut JitCtx) -> u64` in Cranelift's `tail` convention, so
    /// a block can end with a tail call to its successor.
    pub fn signature(&self) -> Signature {
        let mut sig = Signature::new(CallConv::Tail);
        sig.params.push(AbiParam::new(self.ptr));
        sig.returns.push(AbiParam::new(I64));
        sig
    }

    /// `fn(ctx, entry) -> u64` in the host convention: calls a block's
    /// code (`entry`, see [`Translator::signature`]) for Rust.
    pub fn trampoline(&self, fctx: &mut FunctionBuilderContext) -> Function {
        let mut func = Function::with_name_signature(
            UserFuncName::default(),
            self.helper_sig(&[self.ptr, self.ptr]),
        );
        let sig = func.import_signature(self.signature());
        let mut b = FunctionBuilder::new(&mut func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let (ctx, code) = (b.block_params(entry)[0], b.block_params(entry)[1]);
        let c = b.ins().call_indirect(sig, code, &[ctx]);
        let r = b.inst_results(c)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(self.frontend);
        func
    }

    fn helper_sig(&self, params: &[Type]) -> Signature {
        let mut sig = Signature::new(self.call_conv);
        for &t in params {
            sig.params.push(AbiParam::new(t));
        }
        sig.returns.push(AbiParam::new(I64));
        sig
    }

    /// A fresh function holding the IR of `block`.
    pub fn function(
        &self,
        block: &Block,
        fctx: &mut FunctionBuilderContext,
    ) -> (Function, TranslateStats) {
        self.function_region(&[block], fctx)
    }

    /// The function of a region: `blocks[0]` is the entry, the others are
    /// blocks it reaches (see [`region_members`]).
    pub fn function_region(
        &self,
        blocks: &[&Block],
        fctx: &mut FunctionBuilderContext,
    ) -> (Function, TranslateStats) {
        let mut func = Function::with_name_signature(UserFuncName::default(), self.signature());
        let stats = self.translate_region(blocks, &mut func, fctx);
        (func, stats)
    }

    /// Fill `func` (whose signature must be [`Translator::signature`]) with
    /// the IR of `block`.
    pub fn translate(
        &self,
        block: &Block,
        func: &mut Function,
        fctx: &mut FunctionBuilderContext,
    ) -> TranslateStats {
        self.translate_region(&[block], func, fctx)
    }

    /// [`Translator::translate`] for a region (`blocks[0]` the entry).
    pub fn translate_region(
        &self,
        blocks: &[&Block],
        func: &mut Function,
        fctx: &mut FunctionBuilderContext,
    ) -> TranslateStats {
        let block = blocks[0];
        let p = self.ptr;
        let sigs = [
            func.import_signature(self.helper_sig(&[p, I64])),
            func.import_signature(self.helper_sig(&[p])),
            func.import_signature(self.helper_sig(&[p, I64, I64, I64])),
            func.import_signature(self.signature()),
            func.import_signature(self.stub_signature()),
        ];
        let mut b = FunctionBuilder::new(func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        let cpu = b.ins().load(p, mem(), ctx, off::CTX_CPU);
        // A constant offset, folded into each access's address: one
        // pointer register less for the whole function.
        let state = b.ins().iadd_imm_s(cpu, off::CPU_STATE);
        let gpr = core::array::from_fn(|_| b.declare_var(I64));
        let vars = Vars {
            rip: b.declare_var(I64),
            ic: b.declare_var(I64),
            fa: b.declare_var(I64),
            fb: b.declare_var(I64),
            fres: b.declare_var(I64),
            fcf: b.declare_var(I64),
            fbits: b.declare_var(I64),
        };
        let leave = b.create_block();
        b.append_block_param(leave, I64);
        let mut tx = Tx {
            b,
            ptr: p,
            ctx,
            state,
            cpu,
            sig_ptr_i64: sigs[0],
            sig_ptr: sigs[1],
            sig_raise: sigs[2],
            sig_stub: sigs[4],
            leave,
            full_stop: false,
            gpr,
            v: vars,
            t: Track::memory(),
            pre: Track::memory(),
            slow: None,
            checks_tags: false,
            flat_care: 0,
            flat_want: 0,
            cpl3: false,
            mask: ip_mask(block.code_size),
            code_size: block.code_size,
            looping: None,
            region: None,
            member: 0,
        };
        let stats = if blocks.len() > 1 {
            tx.region_body(blocks)
        } else {
            tx.body(block)
        };
        let Tx { mut b, leave, .. } = tx;
        b.switch_to_block(leave);
        let r = b.block_params(leave)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(self.frontend);
        stats
    }
}

/// Host-side fields (CPU state, context, TLB entries).
fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RegSt {
    Unloaded,
    Clean,
    Dirty,
}

/// The raw RFLAGS word as the tracking knows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bits {
    /// In memory.
    Mem,
    /// Memory, with CF replaced by the `fcf` variable (INC/DEC park it).
    Cf,
    /// The whole word is the `fbits` variable.
    Full,
}

/// Which parts of the lazy-flags record are pending (not yet in memory).
/// `op` and `rec` are separate because an instruction can change one
/// without the other (a rotate turns the op into `Rot` and keeps the
/// record).
#[derive(Clone, Copy, Debug)]
struct FlagTrack {
    op: Option<leap_cpu::flags::FlagOp>,
    /// Pending size; a, b, res are the `fa`, `fb`, `fres` variables.
    rec: Option<u8>,
    bits: Bits,
}

impl FlagTrack {
    fn memory() -> Self {
        FlagTrack {
            op: None,
            rec: None,
            bits: Bits::Mem,
        }
    }
}

/// What is known, at the current point of the code, about where the guest
/// state lives. Compile-time only; the values are in variables, so the fast
/// and slow paths of an instruction can join with the same tracking.
#[derive(Clone, Copy, Debug)]
struct Track {
    gst: [RegSt; 16],
    /// RIP is `rip var + rip_off` (masked), or `rip_val` once a branch
    /// set it. The variable holds memory RIP (or an equivalent base) once
    /// `rip_loaded`.
    rip_off: u64,
    rip_val: Option<Value>,
    rip_loaded: bool,
    /// `cpu.icount` is `ic var + ic_add`.
    ic_add: u64,
    ic_loaded: bool,
    fl: FlagTrack,
}

impl Track {
    /// Everything in memory (block entry, after a helper call).
    fn memory() -> Self {
        Track {
            gst: [RegSt::Unloaded; 16],
            rip_off: 0,
            rip_val: None,
            rip_loaded: false,
            ic_add: 0,
            ic_loaded: false,
            fl: FlagTrack::memory(),
        }
    }
}

struct Vars {
    rip: Variable,
    ic: Variable,
    fa: Variable,
    fb: Variable,
    fres: Variable,
    fcf: Variable,
    fbits: Variable,
}

/// Translation state.
struct Tx<'f> {
    b: FunctionBuilder<'f>,
    ptr: Type,
    ctx: Value,
    state: Value,
    cpu: Value,
    sig_ptr_i64: SigRef,
    sig_ptr: SigRef,
    sig_raise: SigRef,
    /// The chain stub's signature (every exit tail-calls it).
    sig_stub: SigRef,
    /// Returns its parameter.
    leave: IrBlock,
    /// The block runs some instruction in the interpreter, which may halt,
    /// set TF, arm a breakpoint or start an interrupt shadow: chained exits
    /// must check for those too.
    full_stop: bool,
    gpr: [Variable; 16],
    v: Vars,
    t: Track,
    /// Tracking before the current instruction (its slow path writes back
    /// from this).
    pre: Track,
    /// Slow path of the current instruction, once a guard needs one.
    slow: Option<IrBlock>,
    /// The block has inline memory accesses: it checks the TLB tag bits
    /// they want at entry and after each interpreter step
    /// (`check_tag_bits`).
    checks_tags: bool,
    /// Segment specialisation (see `flat_plan`): bits of `Cpu::seg_flat`
    /// the block's accesses rely on, and the values they need.
    flat_care: u8,
    flat_want: u8,
    /// The block was decoded at CPL 3 (`Block::user`): decides the TLB
    /// tag bits its accesses want (`tag_bits`).
    cpl3: bool,
    mask: u64,
    code_size: u8,
    /// Set when the block branches back to its own start: the branch
    /// jumps to `LoopHead::head` instead of leaving.
    looping: Option<LoopHead>,
    /// Set when translating a region (see `region.rs`).
    region: Option<region::Region>,
    /// The region block being translated (0: the entry block).
    member: usize,
}

/// The top of a block that loops on itself (see `Tx::open_loop`).
#[derive(Clone, Copy)]
struct LoopHead {
    head: IrBlock,
    /// The tracking every iteration starts from.
    track: Track,
    /// `JitCtx::end`, the budget.
    end: Value,
    insns: usize,
}

/// Whether the last instruction of `block` (a JMP/Jcc rel) branches back
/// to the block's first instruction whatever RIP the block runs at.
fn loops_to_start(block: &Block, mask: u64) -> bool {
    let Some(last) = block.insns.last() else {
        return false;
    };
    let total: u64 = block.insns.iter().map(|i| i.len as u64).sum();
    // A branch narrower than the code size truncates its target.
    last.osize >= block.code_size && total.wrapping_add(last.imm) & mask == 0
}

/// Which segments the block's inline accesses may treat as flat (linear
/// address = offset, no limit or type check): those flat when it was
/// decoded, as `(care, want)` over `Cpu::seg_flat`. The block checks the
/// CPU's bits against them where it loads CPL; a mismatch sends the access
/// to the interpreter. Stack accesses rely on SS's size too: SS is flat
/// only when its B flag matches the code size, as inline stack code assumes.
fn flat_plan(block: &Block, forms: &[Option<InlineForm>]) -> (u8, u8) {
    use leap_cpu::SEG_FLAT_BIG_SS;
    if block.code_size == 8 {
        return (0, 0);
    }
    let mut used = 0u8;
    for (f, insn) in forms.iter().zip(&block.insns) {
        let Some(f) = f else { continue };
        if !f.touches_memory(insn) {
            continue;
        }
        if insn.op.iter().any(|o| o.kind == OpKind::Mem) {
            used |= 1 << insn.mem.seg;
        }
        if matches!(
            f,
            InlineForm::Push
                | InlineForm::Pop
                | InlineForm::Leave
                | InlineForm::Call
                | InlineForm::Ret
                | InlineForm::CallInd
        ) {
            used |= 1 << leap_cpu::state::SS;
        }
    }
    let mut care = used & block.seg_flat & 0x3f;
    let big = block.seg_flat & SEG_FLAT_BIG_SS != 0;
    if care & (1 << leap_cpu::state::SS) != 0 {
        if big == (block.code_size == 4) {
            care |= SEG_FLAT_BIG_SS;
        } else {
            care &= !(1 << leap_cpu::state::SS);
        }
    }
    (care, block.seg_flat & care)
}

/// General registers the block's instructions read or write (bit n:
/// register n), and those they may write, as iced-x86 reports them
/// (implicit operands included).
fn gpr_usage(block: &Block) -> (u16, u16) {
    use iced_x86::{InstructionInfoFactory, OpAccess, Register};
    let mut f = InstructionInfoFactory::new();
    let (mut used, mut written) = (0u16, 0u16);
    for insn in &block.insns {
        for u in f.info(&insn.inst).used_registers() {
            let full = u.register().full_register();
            if !full.is_gpr64() {
                continue;
            }
            let n = full as u32 - Register::RAX as u32;
            used |= 1 << n;
            if !matches!(
                u.access(),
                OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
            ) {
                written |= 1 << n;
            }
        }
    }
    (used, written)
}

impl Tx<'_> {
    fn code64(&self) -> bool {
        self.code_size == 8
    }

    fn body(&mut self, block: &Block) -> TranslateStats {
        let n = block.insns.len();
        let forms: Vec<Option<InlineForm>> = block
            .insns
            .iter()
            .enumerate()
            .map(|(k, i)| inline_form(i, k + 1 == n))
            .collect();
        let memory = forms
            .iter()
            .zip(&block.insns)
            .any(|(f, i)| f.is_some_and(|f| f.touches_memory(i)));
        let mut stats = TranslateStats {
            insns: n,
            inline: 0,
            looping: false,
        };
        self.full_stop = forms.iter().any(|f| f.is_none());
        (self.flat_care, self.flat_want) = flat_plan(block, &forms);
        self.cpl3 = block.user;
        self.entry_loads(memory);
        // A loop made only of inline instructions runs as a host loop
        // (helpers may halt, set TF or an interrupt shadow: those leave).
        if !self.full_stop
            && matches!(forms[n - 1], Some(InlineForm::Jmp | InlineForm::Jcc))
            && loops_to_start(block, self.mask)
        {
            self.open_loop(block);
            stats.looping = true;
        }
        for (k, insn) in block.insns.iter().enumerate() {
            let last = k + 1 == n;
            match forms[k] {
                Some(form) => {
                    stats.inline += 1;
                    if self.inline(k, insn, form) {
                        return stats;
                    }
                }
                None => {
                    self.writeback();
                    let r = self.step(k);
                    if last {
                        self.b.ins().jump(self.leave, &[r.into()]);
                        return stats;
                    }
                    let cont = self.b.create_block();
                    self.b.ins().brif(r, self.leave, &[r.into()], cont, &[]);
                    self.b.switch_to_block(cont);
                    self.t = Track::memory();
                    if self.checks_tags {
                        self.check_tag_bits(k + 1);
                    }
                }
            }
        }
        // Fall-through after an inline instruction (page end, size cap).
        let next = self.rip_now();
        self.t.rip_val = Some(next);
        self.leave_via(next, Pick::Own(0));
        stats
    }

    /// Load what the whole block uses: the count, and for blocks with
    /// inline memory accesses check their TLB tag bits.
    fn entry_loads(&mut self, memory: bool) {
        let ic0 = self.b.ins().load(I64, mem(), self.cpu, off::CPU_ICOUNT);
        self.b.def_var(self.v.ic, ic0);
        self.t.ic_loaded = true;
        if memory {
            self.checks_tags = true;
            self.check_tag_bits(0);
        }
    }

    /// Start a block that branches back to itself: load what the loop
    /// uses, then open the loop head, where the registers the body writes
    /// are tracked as dirty (so exits store them) and the flags as in
    /// memory.
    fn open_loop(&mut self, block: &Block) {
        let (used, written) = gpr_usage(block);
        let _ = self.rip_now();
        for r in 0..16u8 {
            if used & (1 << r) != 0 {
                self.reg(r);
            }
        }
        let end = self.b.ins().load(I64, mem(), self.ctx, off::CTX_END);
        let head = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        for r in 0..16 {
            if written & (1 << r) != 0 && self.t.gst[r] == RegSt::Clean {
                self.t.gst[r] = RegSt::Dirty;
            }
        }
        self.looping = Some(LoopHead {
            head,
            track: self.t,
            end,
            insns: block.insns.len(),
        });
    }

    /// The taken branch of a looping block: go round again unless the run
    /// loop would stop before the next iteration or hand it to the
    /// interpreter (budget, a poll pending); otherwise leave for the
    /// block's own start (`slot`). As for a region's edges (`Tx::edge`),
    /// the epochs cannot have changed: a slow path leaves the block.
    fn loop_back(&mut self, lp: LoopHead, slot: Pick) {
        let saved = self.t;
        let ic = self.b.use_var(self.v.ic);
        // The count after this iteration, and after the next one's last
        // instruction but one (the condition for entering a block).
        let ic_next = self.b.ins().iadd_imm_s(ic, self.t.ic_add as i64 + 1);
        let last = self.b.ins().iadd_imm_s(ic_next, lp.insns as i64 - 1);
        let end = lp.end;
        let stop = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, last, end);
        let out = self.b.create_block();
        let again = self.b.create_block();
        self.b.ins().brif(stop, out, &[], again, &[]);

        self.b.switch_to_block(out);
        let start = self.rip_now_at_head(lp);
        self.exit_to(start, slot);

        // Bring the tracking back to the head's: registers the head does
        // not hold as dirty go to memory, the flags record too; RIP is the
        // head's again (the branch target is the block's start).
        self.b.switch_to_block(again);
        self.t = saved;
        self.reconcile_with_head(&lp.track);
        self.b.def_var(self.v.ic, ic_next);
        self.b.ins().jump(lp.head, &[]);
        self.t = saved;
    }

    /// Make the state match a loop or region head's tracking `head`:
    /// registers it does not hold as dirty go to memory, those it holds but
    /// the current tracking does not are loaded, the flags record goes to
    /// memory.
    fn reconcile_with_head(&mut self, head: &Track) {
        for r in 0..16 {
            let (h, now) = (head.gst[r], self.t.gst[r]);
            if now == RegSt::Dirty && h != RegSt::Dirty {
                let v = self.b.use_var(self.gpr[r]);
                self.b
                    .ins()
                    .store(mem(), v, self.state, off::GPR + 8 * r as i32);
            } else if now == RegSt::Unloaded && h != RegSt::Unloaded {
                let v = self
                    .b
                    .ins()
                    .load(I64, mem(), self.state, off::GPR + 8 * r as i32);
                self.b.def_var(self.gpr[r], v);
            }
        }
        self.flush_flags();
    }

    /// The block's start RIP (what the head's tracking holds).
    fn rip_now_at_head(&mut self, lp: LoopHead) -> Value {
        debug_assert!(lp.track.rip_loaded && lp.track.rip_off == 0);
        self.b.use_var(self.v.rip)
    }

    /// The low bits of the TLB tag an inline access wants: valid, and
    /// user if the block was decoded at CPL 3. A constant in the code, so
    /// no register holds them (`check_tag_bits` makes it hold).
    fn tag_bits(&self) -> u64 {
        TAG_VALID | if self.cpl3 { TAG_USER } else { 0 }
    }

    /// Check what the TLB tags of inline accesses assume, before
    /// instruction `resume`: CPL 3 or not as when the block was decoded,
    /// no #AC checking, the flat segments still flat (`flat_plan`). If
    /// not, the interpreter runs the rest of the block. Only an
    /// instruction that ends its block (far transfers, IRET, SYSCALL...)
    /// changes CPL, but the interpreter steps check again anyway.
    fn check_tag_bits(&mut self, resume: usize) {
        let b = &mut self.b;
        let cpl = b.ins().uload8(I64, mem(), self.state, off::CPL);
        let user = b.ins().icmp_imm_s(IntCC::Equal, cpl, 3);
        let u = b.ins().uextend(I64, user);
        // #AC checking (CPL 3, CR0.AM, EFLAGS.AC) sets a bit no tag has,
        // as does a flat segment that is no longer flat.
        const _: () = assert!(CR0_AM == FLAG_AC);
        let cr0 = b.ins().load(I64, mem(), self.state, off::CR0);
        let fl = b.ins().load(I64, mem(), self.state, off::F_BITS);
        let ac = b.ins().band(cr0, fl);
        let shift = FLAG_AC.trailing_zeros() - NO_TAG_BIT.trailing_zeros();
        let ac = b.ins().ushr_imm_s(ac, shift as i64);
        let ac = b.ins().band_imm_s(ac, NO_TAG_BIT as i64);
        let ac = b.ins().imul(ac, u);
        let u = b.ins().ishl_imm_s(u, 1);
        let bits = b.ins().bor_imm_s(u, TAG_VALID as i64);
        let mut bits = b.ins().bor(bits, ac);
        if self.flat_care != 0 {
            let f = b.ins().uload8(I64, mem(), self.cpu, off::CPU_SEG_FLAT);
            let f = b.ins().bxor_imm_s(f, self.flat_want as i64);
            let f = b.ins().band_imm_s(f, self.flat_care as i64);
            let f = b.ins().icmp_imm_s(IntCC::NotEqual, f, 0);
            let f = b.ins().uextend(I64, f);
            let f = b.ins().ishl_imm_s(f, NO_TAG_BIT.trailing_zeros() as i64);
            bits = b.ins().bor(bits, f);
        }
        let want = self.tag_bits();
        let bad = self.b.ins().icmp_imm_s(IntCC::NotEqual, bits, want as i64);
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(bad, slow, &[], cont, &[]);
        self.b.set_cold_block(slow);
        self.b.switch_to_block(slow);
        self.rest_from(resume);
        self.b.switch_to_block(cont);
    }

    /// Write back the state as tracked and leave instruction `k` and the
    /// rest of the block to the interpreter (`Helpers::rest`).
    fn rest_from(&mut self, k: usize) {
        self.writeback();
        let idx = self.insn_index(k);
        let r = self.call(off::H_REST, self.sig_ptr_i64, &[self.ctx, idx]);
        self.b.ins().jump(self.leave, &[r.into()]);
    }

    /// Call helper at `slot` of the helper table; returns its result.
    fn call(&mut self, slot: i32, sig: SigRef, args: &[Value]) -> Value {
        // Helpers are called on slow paths: the table's address is loaded
        // there rather than held in a register through the function.
        let h = self
            .b
            .ins()
            .load(self.ptr, mem(), self.ctx, off::CTX_HELPERS);
        let f = self.b.ins().load(self.ptr, mem(), h, slot);
        let c = self.b.ins().call_indirect(sig, f, args);
        self.b.inst_results(c)[0]
    }

    /// Run instruction `k` through the interpreter (state must be in memory).
    fn step(&mut self, k: usize) -> Value {
        let idx = self.insn_index(k);
        self.call(off::H_STEP, self.sig_ptr_i64, &[self.ctx, idx])
    }

    /// The helpers' index of instruction `k` of the block being translated
    /// (`runtime::ctx_block`).
    fn insn_index(&mut self, k: usize) -> Value {
        let idx = (self.member as i64) << crate::runtime::MEMBER_SHIFT | k as i64;
        self.b.ins().iconst(I64, idx)
    }

    fn reg(&mut self, r: u8) -> Value {
        let r = r as usize;
        if self.t.gst[r] == RegSt::Unloaded {
            let v = self
                .b
                .ins()
                .load(I64, mem(), self.state, off::GPR + 8 * r as i32);
            self.b.def_var(self.gpr[r], v);
            self.t.gst[r] = RegSt::Clean;
        }
        self.b.use_var(self.gpr[r])
    }

    /// Replace all 64 bits of register `r`.
    fn set_reg(&mut self, r: u8, v: Value) {
        self.b.def_var(self.gpr[r as usize], v);
        self.t.gst[r as usize] = RegSt::Dirty;
    }

    fn mask_to(&mut self, v: Value, size: u8) -> Value {
        low_bits(&mut self.b, v, size)
    }

    /// `Cpu::get_reg`.
    fn get(&mut self, o: &Operand) -> Value {
        let v = self.reg(o.reg);
        if o.hi {
            let v = self.b.ins().ushr_imm_s(v, 8);
            self.b.ins().band_imm_s(v, 0xff)
        } else {
            self.mask_to(v, o.size)
        }
    }

    /// `Cpu::put_reg`: the x86 merge rules.
    fn put(&mut self, o: &Operand, v: Value) {
        let new = match (o.size, o.hi) {
            (1, hi) | (2, hi) => {
                let field: i64 = if o.size == 2 { 0xffff } else { 0xff };
                let shift = if hi { 8 } else { 0 };
                let old = self.reg(o.reg);
                let keep = self.b.ins().band_imm_s(old, !(field << shift));
                let v = self.b.ins().band_imm_s(v, field);
                let v = if hi {
                    self.b.ins().ishl_imm_s(v, shift)
                } else {
                    v
                };
                self.b.ins().bor(keep, v)
            }
            (4, _) => low_bits(&mut self.b, v, 4),
            _ => v,
        };
        self.set_reg(o.reg, new);
    }

    fn imm(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    /// Emit one inline instruction (index `k`). Returns true if it ended
    /// the function.
    fn inline(&mut self, k: usize, insn: &Insn, form: InlineForm) -> bool {
        self.pre = self.t;
        self.slow = None;
        match form {
            InlineForm::Jmp | InlineForm::Jcc => {
                self.branch(insn, matches!(form, InlineForm::Jcc));
                return true;
            }
            InlineForm::Call | InlineForm::Ret | InlineForm::JmpInd | InlineForm::CallInd => {
                self.call_ret(k, insn, form);
                return true;
            }
            _ => self.emit(insn, form),
        }
        self.t.rip_off += insn.len as u64;
        self.t.ic_add += 1;
        self.finish(k);
        false
    }

    /// Branch to the current instruction's slow path when `fail` is set.
    /// Must come before the instruction changes any guest state.
    fn guard(&mut self, fail: Value) {
        let slow = *self.slow.get_or_insert_with(|| self.b.create_block());
        let cont = self.b.create_block();
        self.b.ins().brif(fail, slow, &[], cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// Close instruction `k`: emit its slow path (if a guard made one).
    /// The slow path writes back the state as before the instruction and
    /// leaves the rest of the block to the interpreter (`Helpers::rest`):
    /// nothing joins the fast path again, which keeps the code small and
    /// quick to compile; a slow path is rare once the TLB is warm.
    fn finish(&mut self, k: usize) {
        let Some(slow) = self.slow.take() else {
            return;
        };
        let join = self.b.create_block();
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(slow);
        let post = self.t;
        self.t = self.pre;
        self.rest_from(k);
        self.t = post;
        self.b.switch_to_block(join);
    }

    /// RIP of the current instruction, on the main path.
    fn rip_now(&mut self) -> Value {
        if let Some(v) = self.t.rip_val {
            return v;
        }
        if !self.t.rip_loaded {
            let v = self.b.ins().load(I64, mem(), self.state, off::RIP);
            self.b.def_var(self.v.rip, v);
            self.t.rip_loaded = true;
        }
        let base = self.b.use_var(self.v.rip);
        self.rip_plus(base)
    }

    fn rip_plus(&mut self, base: Value) -> Value {
        if self.t.rip_off == 0 {
            return base;
        }
        let v = self.b.ins().iadd_imm_s(base, self.t.rip_off as i64);
        self.mask_to_ip(v)
    }

    /// `Cpu::next_rip` of the current instruction.
    fn next_rip(&mut self, insn: &Insn) -> Value {
        let cur = self.rip_now();
        let next = self.b.ins().iadd_imm_s(cur, insn.len as i64);
        self.mask_to_ip(next)
    }

    fn mask_to_ip(&mut self, v: Value) -> Value {
        // `mask` is `ip_mask(code_size)`.
        low_bits(&mut self.b, v, self.code_size)
    }

    /// `Cpu::branch_to`'s check: true if `target` is past the CS limit (or
    /// not canonical in 64-bit code).
    fn branch_bad(&mut self, target: Value) -> Value {
        if self.code64() {
            let t = self.b.ins().ishl_imm_s(target, 16);
            let t = self.b.ins().sshr_imm_s(t, 16);
            self.b.ins().icmp(IntCC::NotEqual, t, target)
        } else {
            let lim = self.b.ins().load(
                cranelift_codegen::ir::types::I32,
                mem(),
                self.state,
                off::CS_LIMIT,
            );
            let lim = self.b.ins().uextend(I64, lim);
            self.b.ins().icmp(IntCC::UnsignedGreaterThan, target, lim)
        }
    }

    /// JMP rel / Jcc rel at the end of the block: the limit (or canonical)
    /// check, then commit and leave.
    fn branch(&mut self, insn: &Insn, conditional: bool) {
        let taken = if conditional {
            Some(self.cond(insn.cc))
        } else {
            None
        };
        if self.region.is_some() && self.region_branch(insn, taken) {
            return;
        }
        if let Some(lp) = self.looping {
            // The target is the block's start, where it began inside the
            // CS limit (and canonical): no #GP to check.
            match taken {
                Some(c) => {
                    let back = self.b.create_block();
                    let fall = self.b.create_block();
                    self.b.ins().brif(c, back, &[], fall, &[]);
                    self.b.switch_to_block(fall);
                    let saved = self.t;
                    let next = self.next_rip(insn);
                    self.exit_to(next, Pick::Own(1));
                    self.t = saved;
                    self.b.switch_to_block(back);
                    self.loop_back(lp, Pick::Own(0));
                }
                None => self.loop_back(lp, Pick::Own(0)),
            }
            return;
        }
        let next = self.next_rip(insn);
        let target = self.b.ins().iadd_imm_s(next, insn.imm as i64);
        let target = self.mask_to(target, insn.osize);
        let bad = self.branch_bad(target);
        let (new_rip, bad) = match taken {
            Some(c) => (
                self.b.ins().select(c, target, next),
                self.b.ins().band(bad, c),
            ),
            None => (target, bad),
        };
        let gp = self.b.create_block();
        let ok = self.b.create_block();
        self.b.ins().brif(bad, gp, &[], ok, &[]);

        // #GP(0): the branch did not happen; state is as before it.
        self.b.switch_to_block(gp);
        self.writeback();
        let v = self.imm(leap_cpu::exception::GP as u64);
        let z = self.imm(0);
        let one = self.imm(1);
        let r = self.call(off::H_RAISE, self.sig_raise, &[self.ctx, v, z, one]);
        self.b.ins().jump(self.leave, &[r.into()]);

        self.b.switch_to_block(ok);
        let pick = match taken {
            Some(c) => Pick::Sel(c),
            None => Pick::Own(0),
        };
        self.exit_to(new_rip, pick);
    }

    /// Commit the block's last instruction, which set RIP to `rip`, and
    /// leave, to the successor `pick` finds if it can be entered directly.
    fn exit_to(&mut self, rip: Value, pick: Pick) {
        self.t.rip_val = Some(rip);
        self.t.ic_add += 1;
        self.leave_via(rip, pick);
    }

    /// Store everything the tracking says differs from memory. Changes no
    /// tracking, so it can be used on a side exit.
    fn writeback(&mut self) {
        for r in 0..16 {
            if self.t.gst[r] == RegSt::Dirty {
                let v = self.b.use_var(self.gpr[r]);
                self.b
                    .ins()
                    .store(mem(), v, self.state, off::GPR + 8 * r as i32);
            }
        }
        // Round a loop, memory keeps the RIP and count of the iteration
        // where they were last stored: offsets of zero do not mean equal.
        let looping = self.looping.is_some() || self.region.is_some();
        if self.t.rip_val.is_some() || self.t.rip_off != 0 || looping {
            let v = match self.t.rip_val {
                Some(v) => v,
                None => {
                    // A base loaded here may be on a side path: not kept.
                    let base = if self.t.rip_loaded {
                        self.b.use_var(self.v.rip)
                    } else {
                        self.b.ins().load(I64, mem(), self.state, off::RIP)
                    };
                    self.rip_plus(base)
                }
            };
            self.b.ins().store(mem(), v, self.state, off::RIP);
        }
        if self.t.ic_add != 0 || looping {
            let base = if self.t.ic_loaded {
                self.b.use_var(self.v.ic)
            } else {
                self.b.ins().load(I64, mem(), self.cpu, off::CPU_ICOUNT)
            };
            let v = self.b.ins().iadd_imm_s(base, self.t.ic_add as i64);
            self.b.ins().store(mem(), v, self.cpu, off::CPU_ICOUNT);
        }
        self.writeback_flags();
    }
}

/// The low `size` bytes of `v`, zero-extended. A narrowing and a
/// zero-extension rather than an AND: x86-64 cannot encode the 32-bit mask
/// as an immediate (Cranelift loaded it from the constant pool), while the
/// extension is one `mov r32, r32` (or `movzx`), and on other hosts a
/// single extend instruction as well.
pub(crate) fn low_bits(b: &mut FunctionBuilder, v: Value, size: u8) -> Value {
    use cranelift_codegen::ir::types::{I16, I32, I8};
    let narrow = match size {
        1 => I8,
        2 => I16,
        4 => I32,
        _ => return v,
    };
    let n = b.ins().ireduce(narrow, v);
    b.ins().uextend(I64, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Code, Instruction, Register};
    use leap_cpu::blocks::build_insn;

    fn form(i: Instruction, last: bool) -> Option<InlineForm> {
        let insn = build_insn(&i, 4, i.len().max(1) as u8);
        inline_form(&insn, last)
    }

    #[test]
    fn classification() {
        use Register::*;
        let rr = |c, a, b| Instruction::with2(c, a, b).unwrap();
        assert!(matches!(
            form(rr(Code::Mov_r32_rm32, EAX, ECX), false),
            Some(InlineForm::MovRR)
        ));
        assert!(matches!(
            form(
                Instruction::with2(Code::Mov_r32_imm32, EAX, 5u32).unwrap(),
                false
            ),
            Some(InlineForm::MovRI)
        ));
        assert!(matches!(
            form(rr(Code::Add_r8_rm8, AH, CL), false),
            Some(InlineForm::Alu(AluOp::Add, Src::Reg(_)))
        ));
        assert!(matches!(
            form(Instruction::with1(Code::Inc_r32, EBX).unwrap(), false),
            Some(InlineForm::Inc)
        ));
        let m = iced_x86::MemoryOperand::with_base_displ(EBX, 8);
        assert!(matches!(
            form(
                Instruction::with2(Code::Mov_r32_rm32, EAX, m).unwrap(),
                false
            ),
            Some(InlineForm::Load)
        ));
        assert!(matches!(
            form(
                Instruction::with2(Code::Add_rm32_r32, m, ECX).unwrap(),
                false
            ),
            Some(InlineForm::AluMem(AluOp::Add, Src::Reg(_)))
        ));
        assert!(matches!(
            form(
                Instruction::with2(Code::Shl_rm32_CL, EDX, CL).unwrap(),
                false
            ),
            Some(InlineForm::Shift(ShiftOp::Shl, Count::Cl))
        ));
        assert!(matches!(
            form(rr(Code::Adc_r32_rm32, EAX, ECX), false),
            Some(InlineForm::Alu(AluOp::Adc, Src::Reg(_)))
        ));
        assert!(matches!(
            form(
                Instruction::with2(Code::Sbb_rm32_r32, m, ECX).unwrap(),
                false
            ),
            Some(InlineForm::AluMem(AluOp::Sbb, Src::Reg(_)))
        ));
        // Segment registers go to the helper.
        assert!(form(rr(Code::Mov_r32m16_Sreg, EAX, DS), false).is_none());
        // Branches only at the end of a block.
        let j = Instruction::with_branch(Code::Je_rel32_32, 0x2000).unwrap();
        assert!(form(j, false).is_none());
        assert!(matches!(form(j, true), Some(InlineForm::Jcc)));
        let c = Instruction::with_branch(Code::Call_rel32_32, 0x2000).unwrap();
        assert!(matches!(form(c, true), Some(InlineForm::Call)));
        assert!(matches!(
            form(Instruction::with(Code::Retnd), true),
            Some(InlineForm::Ret)
        ));
    }
}
