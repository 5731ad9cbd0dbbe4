//! Decoded block -> Cranelift IR.
//!
//! The generated function is `extern "C" fn(*mut JitCtx) -> u64`. It runs
//! the block's instructions in order, with the interpreter's block-loop
//! contract (`Cpu::exec_block`):
//!
//! - On entry, if the block could run into the instruction budget before
//!   its last instruction, or a stale `end_block` is set, the whole block
//!   is handed to the interpreter (`Helpers::interp`), so the compiled path
//!   itself never needs a budget check.
//! - Instructions in [`InlineForm`] are emitted as IR. Guest registers live
//!   in Cranelift variables, loaded on first use and written back (only
//!   those changed) before every helper call and at every exit. RIP and the
//!   instruction count are kept as "memory value + constant" and written at
//!   the same points. The lazy-flags record of the last inline flag-setting
//!   instruction is kept as SSA values and written once; conditions read
//!   from it are computed directly (CMP + Jcc is a compare and a branch).
//! - Every other instruction is a call to `Helpers::step`, which runs the
//!   interpreter's handler with exactly the block loop's commit rules.

use crate::runtime::{ip_mask, off, CONTINUE};
use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::types::{I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Block as IrBlock, Function, InstBuilder, MemFlagsData, SigRef, Signature, Type,
    UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use iced_x86::{Mnemonic, OpKind as IOp};
use leap_cpu::blocks::Block;
use leap_cpu::exception;
use leap_cpu::flags::{sign_bit, size_mask, FlagOp};
use leap_cpu::insn::{Insn, OpKind, Operand};

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
}

#[derive(Clone, Copy, Debug)]
pub enum Src {
    Reg(Operand),
    Imm(u64),
}

/// The instruction forms the translator emits as IR (no memory operand,
/// no helper call).
#[derive(Clone, Copy, Debug)]
pub enum InlineForm {
    MovRR,
    MovRI,
    Alu(AluOp, Src),
    Inc,
    Dec,
    /// JMP rel, last in its block.
    Jmp,
    /// Jcc rel, last in its block.
    Jcc,
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

/// Which inline form, if any, `insn` is. `last` says it ends the block
/// (branches are inlined only there).
pub fn inline_form(insn: &Insn, last: bool) -> Option<InlineForm> {
    use Mnemonic::*;
    let d = &insn.op[0];
    let s = &insn.op[1];
    let m = insn.inst.mnemonic();
    let two = insn.inst.op_count() == 2 && gpr_operand(d);
    let src = || {
        if gpr_operand(s) && s.size == d.size {
            Some(Src::Reg(*s))
        } else if s.kind == OpKind::Imm {
            Some(Src::Imm(insn.imm))
        } else {
            None
        }
    };
    match m {
        Mov if two => match src()? {
            Src::Reg(_) => Some(InlineForm::MovRR),
            Src::Imm(_) => Some(InlineForm::MovRI),
        },
        Add | Or | And | Sub | Xor | Cmp | Test if two => {
            let op = match m {
                Add => AluOp::Add,
                Or => AluOp::Or,
                And => AluOp::And,
                Sub => AluOp::Sub,
                Xor => AluOp::Xor,
                Cmp => AluOp::Cmp,
                _ => AluOp::Test,
            };
            Some(InlineForm::Alu(op, src()?))
        }
        Inc | Dec if insn.inst.op_count() == 1 && gpr_operand(d) => Some(if m == Inc {
            InlineForm::Inc
        } else {
            InlineForm::Dec
        }),
        Jmp if last && near_branch(insn) => Some(InlineForm::Jmp),
        Jo | Jno | Jb | Jae | Je | Jne | Jbe | Ja | Js | Jns | Jp | Jnp | Jl | Jge | Jle | Jg
            if last && near_branch(insn) =>
        {
            Some(InlineForm::Jcc)
        }
        _ => None,
    }
}

/// What a translation produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslateStats {
    pub insns: usize,
    /// Instructions emitted as IR rather than helper calls.
    pub inline: usize,
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

    /// `fn(ctx: *mut JitCtx) -> u64`.
    pub fn signature(&self) -> Signature {
        let mut sig = Signature::new(self.call_conv);
        sig.params.push(AbiParam::new(self.ptr));
        sig.returns.push(AbiParam::new(I64));
        sig
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
        let mut func = Function::with_name_signature(UserFuncName::default(), self.signature());
        let stats = self.translate(block, &mut func, fctx);
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
        let p = self.ptr;
        let sigs = [
            func.import_signature(self.helper_sig(&[p, I64])),
            func.import_signature(self.helper_sig(&[p])),
            func.import_signature(self.helper_sig(&[p, I64, I64, I64])),
        ];
        let mut b = FunctionBuilder::new(func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        let state = b.ins().load(p, mem(), ctx, off::CTX_STATE);
        let cpu = b.ins().load(p, mem(), ctx, off::CTX_CPU);
        let helpers = b.ins().load(p, mem(), ctx, off::CTX_HELPERS);
        let gpr = core::array::from_fn(|_| b.declare_var(I64));
        let leave = b.create_block();
        b.append_block_param(leave, I64);
        let mut tx = Tx {
            b,
            ptr: p,
            ctx,
            state,
            cpu,
            helpers,
            sig_ptr_i64: sigs[0],
            sig_ptr: sigs[1],
            sig_raise: sigs[2],
            leave,
            gpr,
            gst: [RegSt::Unloaded; 16],
            rip_off: 0,
            rip_val: None,
            rip_base: None,
            ic_add: 0,
            ic_base: None,
            flags: None,
            bits_cf: None,
            mask: ip_mask(block.code_size),
            code64: block.code_size == 8,
        };
        let stats = tx.body(block);
        let Tx { mut b, leave, .. } = tx;
        b.switch_to_block(leave);
        let r = b.block_params(leave)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(self.frontend);
        stats
    }
}

fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RegSt {
    Unloaded,
    Clean,
    Dirty,
}

/// The flag record of the last inline flag-setting instruction, not yet in
/// memory.
#[derive(Clone, Copy)]
struct Pending {
    op: FlagOp,
    size: u8,
    a: Value,
    b: Value,
    res: Value,
}

/// Translation state. The body is straight-line code with side exits, so
/// what is known at the current point (which registers are loaded or
/// changed, pending RIP/count deltas, the pending flag record) is tracked
/// at compile time; side exits write back from that knowledge without
/// changing it.
struct Tx<'f> {
    b: FunctionBuilder<'f>,
    ptr: Type,
    ctx: Value,
    state: Value,
    cpu: Value,
    helpers: Value,
    sig_ptr_i64: SigRef,
    sig_ptr: SigRef,
    sig_raise: SigRef,
    /// Returns its parameter.
    leave: IrBlock,
    gpr: [Variable; 16],
    gst: [RegSt; 16],
    /// RIP is `memory rip + rip_off` (masked), or `rip_val` once a branch
    /// set it.
    rip_off: u64,
    rip_val: Option<Value>,
    /// Memory RIP loaded on the main path since the last helper call.
    rip_base: Option<Value>,
    /// `cpu.icount` is `memory + ic_add`.
    ic_add: u64,
    ic_base: Option<Value>,
    flags: Option<Pending>,
    /// CF parked in the raw flag word by INC/DEC, not yet in memory.
    bits_cf: Option<Value>,
    mask: u64,
    code64: bool,
}

impl Tx<'_> {
    fn body(&mut self, block: &Block) -> TranslateStats {
        let n = block.insns.len();
        let mut stats = TranslateStats {
            insns: n,
            inline: 0,
        };
        self.entry_check(n);
        for (k, insn) in block.insns.iter().enumerate() {
            let last = k + 1 == n;
            match inline_form(insn, last) {
                Some(form) => {
                    stats.inline += 1;
                    if self.inline(insn, form) {
                        return stats;
                    }
                }
                None => {
                    self.writeback();
                    let idx = self.b.ins().iconst(I64, k as i64);
                    let r = self.call(off::H_STEP, self.sig_ptr_i64, &[self.ctx, idx]);
                    if last {
                        self.b.ins().jump(self.leave, &[r.into()]);
                        return stats;
                    }
                    let cont = self.b.create_block();
                    self.b.ins().brif(r, self.leave, &[r.into()], cont, &[]);
                    self.b.switch_to_block(cont);
                    self.forget();
                }
            }
        }
        self.writeback();
        let c = self.b.ins().iconst(I64, CONTINUE as i64);
        self.b.ins().jump(self.leave, &[c.into()]);
        stats
    }

    /// Hand the block to the interpreter when the budget would stop it
    /// before its last instruction, or when `end_block` is already set.
    fn entry_check(&mut self, n: usize) {
        let b = &mut self.b;
        let ic0 = b.ins().load(I64, mem(), self.cpu, off::CPU_ICOUNT);
        let end = b.ins().load(I64, mem(), self.ctx, off::CTX_END);
        let eb = b.ins().load(I8, mem(), self.cpu, off::CPU_END_BLOCK);
        let eb = b.ins().icmp_imm_s(IntCC::NotEqual, eb, 0);
        let slow = if n > 1 {
            let last = b.ins().iadd_imm_s(ic0, n as i64 - 1);
            let over = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, last, end);
            b.ins().bor(over, eb)
        } else {
            eb
        };
        let interp = b.create_block();
        let fast = b.create_block();
        b.ins().brif(slow, interp, &[], fast, &[]);
        b.switch_to_block(interp);
        let r = self.call(off::H_INTERP, self.sig_ptr, &[self.ctx]);
        self.b.ins().jump(self.leave, &[r.into()]);
        self.b.switch_to_block(fast);
        self.ic_base = Some(ic0);
    }

    /// Call helper at `slot` of the helper table; returns its result.
    fn call(&mut self, slot: i32, sig: SigRef, args: &[Value]) -> Value {
        let f = self.b.ins().load(self.ptr, mem(), self.helpers, slot);
        let c = self.b.ins().call_indirect(sig, f, args);
        self.b.inst_results(c)[0]
    }

    fn reg(&mut self, r: u8) -> Value {
        let r = r as usize;
        if self.gst[r] == RegSt::Unloaded {
            let v = self
                .b
                .ins()
                .load(I64, mem(), self.state, off::GPR + 8 * r as i32);
            self.b.def_var(self.gpr[r], v);
            self.gst[r] = RegSt::Clean;
        }
        self.b.use_var(self.gpr[r])
    }

    fn mask_to(&mut self, v: Value, size: u8) -> Value {
        if size >= 8 {
            v
        } else {
            self.b.ins().band_imm_s(v, size_mask(size) as i64)
        }
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
            (4, _) => self.b.ins().band_imm_s(v, 0xffff_ffff),
            _ => v,
        };
        self.b.def_var(self.gpr[o.reg as usize], new);
        self.gst[o.reg as usize] = RegSt::Dirty;
    }

    fn imm(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    /// Emit one inline instruction. Returns true if it ended the function.
    fn inline(&mut self, insn: &Insn, form: InlineForm) -> bool {
        let d = insn.op[0];
        let size = d.size;
        match form {
            InlineForm::MovRR => {
                let v = self.get(&insn.op[1]);
                self.put(&d, v);
            }
            InlineForm::MovRI => {
                let v = self.imm(insn.imm);
                self.put(&d, v);
            }
            InlineForm::Alu(op, src) => {
                let a = self.get(&d);
                let b = match src {
                    Src::Reg(s) => self.get(&s),
                    Src::Imm(i) => self.imm(i & size_mask(size)),
                };
                let r = match op {
                    AluOp::Add => self.b.ins().iadd(a, b),
                    AluOp::Sub | AluOp::Cmp => self.b.ins().isub(a, b),
                    AluOp::And | AluOp::Test => self.b.ins().band(a, b),
                    AluOp::Or => self.b.ins().bor(a, b),
                    AluOp::Xor => self.b.ins().bxor(a, b),
                };
                let r = self.mask_to(r, size);
                self.flags = Some(match op {
                    AluOp::Add | AluOp::Sub | AluOp::Cmp => Pending {
                        op: if op == AluOp::Add {
                            FlagOp::Add
                        } else {
                            FlagOp::Sub
                        },
                        size,
                        a,
                        b,
                        res: r,
                    },
                    _ => {
                        let z = self.imm(0);
                        Pending {
                            op: FlagOp::Logic,
                            size,
                            a: z,
                            b: z,
                            res: r,
                        }
                    }
                });
                if !matches!(op, AluOp::Cmp | AluOp::Test) {
                    self.put(&d, r);
                }
            }
            InlineForm::Inc | InlineForm::Dec => {
                let x = self.get(&d);
                let inc = matches!(form, InlineForm::Inc);
                let r = self.b.ins().iadd_imm_s(x, if inc { 1 } else { -1 });
                let r = self.mask_to(r, size);
                let cf = self.cf();
                self.bits_cf = Some(self.b.ins().uextend(I64, cf));
                let one = self.imm(1);
                self.flags = Some(Pending {
                    op: if inc { FlagOp::Inc } else { FlagOp::Dec },
                    size,
                    a: x,
                    b: one,
                    res: r,
                });
                self.put(&d, r);
            }
            InlineForm::Jmp | InlineForm::Jcc => {
                self.branch(insn, matches!(form, InlineForm::Jcc));
                return true;
            }
        }
        self.rip_off += insn.len as u64;
        self.ic_add += 1;
        false
    }

    /// RIP of the current instruction, on the main path.
    fn rip_now(&mut self) -> Value {
        if let Some(v) = self.rip_val {
            return v;
        }
        let base = match self.rip_base {
            Some(v) => v,
            None => {
                let v = self.b.ins().load(I64, mem(), self.state, off::RIP);
                self.rip_base = Some(v);
                v
            }
        };
        if self.rip_off == 0 {
            return base;
        }
        let v = self.b.ins().iadd_imm_s(base, self.rip_off as i64);
        self.mask_to_ip(v)
    }

    fn mask_to_ip(&mut self, v: Value) -> Value {
        if self.mask == u64::MAX {
            v
        } else {
            self.b.ins().band_imm_s(v, self.mask as i64)
        }
    }

    /// JMP rel / Jcc rel at the end of the block: `Cpu::branch_to`'s limit
    /// (or canonical) check, then commit and leave.
    fn branch(&mut self, insn: &Insn, conditional: bool) {
        let taken = if conditional {
            Some(self.cond(insn.cc))
        } else {
            None
        };
        let cur = self.rip_now();
        let next = self.b.ins().iadd_imm_s(cur, insn.len as i64);
        let next = self.mask_to_ip(next);
        let target = self.b.ins().iadd_imm_s(next, insn.imm as i64);
        let target = self.mask_to(target, insn.osize);
        let bad = if self.code64 {
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
        };
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
        let v = self.imm(exception::GP as u64);
        let z = self.imm(0);
        let one = self.imm(1);
        let r = self.call(off::H_RAISE, self.sig_raise, &[self.ctx, v, z, one]);
        self.b.ins().jump(self.leave, &[r.into()]);

        self.b.switch_to_block(ok);
        self.rip_val = Some(new_rip);
        self.ic_add += 1;
        self.writeback();
        let c = self.imm(CONTINUE);
        self.b.ins().jump(self.leave, &[c.into()]);
    }

    /// CF as a 0/1 `I8`.
    fn cf(&mut self) -> Value {
        match self.flags {
            Some(p) => self.pending_cf(&p),
            None => {
                let f = self.b.ins().iadd_imm_s(self.state, off::FLAGS as i64);
                let r = self.call(off::H_CF, self.sig_ptr, &[f]);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0)
            }
        }
    }

    fn pending_cf(&mut self, p: &Pending) -> Value {
        let b = &mut self.b;
        match p.op {
            FlagOp::Add => b.ins().icmp(IntCC::UnsignedLessThan, p.res, p.a),
            FlagOp::Sub => b.ins().icmp(IntCC::UnsignedLessThan, p.a, p.b),
            FlagOp::Inc | FlagOp::Dec => {
                let c = self.bits_cf.expect("INC/DEC parks CF");
                b.ins().icmp_imm_s(IntCC::NotEqual, c, 0)
            }
            _ => b.ins().iconst(I8, 0),
        }
    }

    fn pending_zf(&mut self, p: &Pending) -> Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, p.res, 0)
    }

    fn pending_sf(&mut self, p: &Pending) -> Value {
        let s = self.b.ins().band_imm_s(p.res, sign_bit(p.size) as i64);
        self.b.ins().icmp_imm_s(IntCC::NotEqual, s, 0)
    }

    fn pending_pf(&mut self, p: &Pending) -> Value {
        let b = &mut self.b;
        let v = b.ins().band_imm_s(p.res, 0xff);
        let s = b.ins().ushr_imm_s(v, 4);
        let v = b.ins().bxor(v, s);
        let s = b.ins().ushr_imm_s(v, 2);
        let v = b.ins().bxor(v, s);
        let s = b.ins().ushr_imm_s(v, 1);
        let v = b.ins().bxor(v, s);
        let v = b.ins().band_imm_s(v, 1);
        b.ins().icmp_imm_s(IntCC::Equal, v, 0)
    }

    fn pending_of(&mut self, p: &Pending) -> Value {
        let sb = sign_bit(p.size);
        let b = &mut self.b;
        match p.op {
            FlagOp::Add => {
                let x = b.ins().bxor(p.a, p.res);
                let y = b.ins().bxor(p.b, p.res);
                let v = b.ins().band(x, y);
                let v = b.ins().band_imm_s(v, sb as i64);
                b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            FlagOp::Sub => {
                let x = b.ins().bxor(p.a, p.b);
                let y = b.ins().bxor(p.a, p.res);
                let v = b.ins().band(x, y);
                let v = b.ins().band_imm_s(v, sb as i64);
                b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            FlagOp::Inc => b.ins().icmp_imm_s(IntCC::Equal, p.res, sb as i64),
            FlagOp::Dec => b.ins().icmp_imm_s(IntCC::Equal, p.res, (sb - 1) as i64),
            _ => b.ins().iconst(I8, 0),
        }
    }

    /// `a` and `b` of a SUB shifted so their operand-size sign bit is bit 63.
    fn signed_pair(&mut self, p: &Pending) -> (Value, Value) {
        let sh = 64 - p.size as i64 * 8;
        if sh == 0 {
            return (p.a, p.b);
        }
        (
            self.b.ins().ishl_imm_s(p.a, sh),
            self.b.ins().ishl_imm_s(p.b, sh),
        )
    }

    /// Condition code `cc` (`LazyFlags::cond`) as a 0/1 `I8`.
    fn cond(&mut self, cc: u8) -> Value {
        let Some(p) = self.flags else {
            let f = self.b.ins().iadd_imm_s(self.state, off::FLAGS as i64);
            let c = self.imm(cc as u64);
            let r = self.call(off::H_COND, self.sig_ptr_i64, &[f, c]);
            return self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        };
        let neg = cc & 1 != 0;
        if p.op == FlagOp::Sub {
            // CMP/SUB: the condition is a plain comparison of the operands.
            let direct = match cc >> 1 {
                1 => Some((IntCC::UnsignedLessThan, false)),
                2 => Some((IntCC::Equal, false)),
                3 => Some((IntCC::UnsignedLessThanOrEqual, false)),
                6 => Some((IntCC::SignedLessThan, true)),
                7 => Some((IntCC::SignedLessThanOrEqual, true)),
                _ => None,
            };
            if let Some((icc, signed)) = direct {
                let (a, b) = if signed {
                    self.signed_pair(&p)
                } else {
                    (p.a, p.b)
                };
                let icc = if neg { icc.complement() } else { icc };
                return self.b.ins().icmp(icc, a, b);
            }
        }
        let r = match cc >> 1 {
            0 => self.pending_of(&p),
            1 => self.pending_cf(&p),
            2 => self.pending_zf(&p),
            3 => {
                let c = self.pending_cf(&p);
                let z = self.pending_zf(&p);
                self.b.ins().bor(c, z)
            }
            4 => self.pending_sf(&p),
            5 => self.pending_pf(&p),
            6 => {
                let s = self.pending_sf(&p);
                let o = self.pending_of(&p);
                self.b.ins().bxor(s, o)
            }
            _ => {
                let s = self.pending_sf(&p);
                let o = self.pending_of(&p);
                let l = self.b.ins().bxor(s, o);
                let z = self.pending_zf(&p);
                self.b.ins().bor(z, l)
            }
        };
        if neg {
            self.b.ins().bxor_imm_s(r, 1)
        } else {
            r
        }
    }

    /// Store everything the tracking says differs from memory. Changes no
    /// tracking, so it can be used on a side exit.
    fn writeback(&mut self) {
        for r in 0..16 {
            if self.gst[r] == RegSt::Dirty {
                let v = self.b.use_var(self.gpr[r]);
                self.b
                    .ins()
                    .store(mem(), v, self.state, off::GPR + 8 * r as i32);
            }
        }
        if self.rip_val.is_some() || self.rip_off != 0 {
            let saved = self.rip_base;
            let v = self.rip_now();
            // A base loaded here may be on a side path: do not keep it.
            self.rip_base = saved;
            self.b.ins().store(mem(), v, self.state, off::RIP);
        }
        if self.ic_add != 0 {
            let base = match self.ic_base {
                Some(v) => v,
                None => self.b.ins().load(I64, mem(), self.cpu, off::CPU_ICOUNT),
            };
            let v = self.b.ins().iadd_imm_s(base, self.ic_add as i64);
            self.b.ins().store(mem(), v, self.cpu, off::CPU_ICOUNT);
        }
        if let Some(cf) = self.bits_cf {
            let old = self.b.ins().load(I64, mem(), self.state, off::F_BITS);
            let old = self.b.ins().band_imm_s(old, !1);
            let v = self.b.ins().bor(old, cf);
            self.b.ins().store(mem(), v, self.state, off::F_BITS);
        }
        if let Some(p) = self.flags {
            let op = self.b.ins().iconst(I8, p.op as u8 as i64);
            self.b.ins().store(mem(), op, self.state, off::F_OP);
            let size = self.b.ins().iconst(I8, p.size as i64);
            self.b.ins().store(mem(), size, self.state, off::F_SIZE);
            self.b.ins().store(mem(), p.a, self.state, off::F_A);
            self.b.ins().store(mem(), p.b, self.state, off::F_B);
            self.b.ins().store(mem(), p.res, self.state, off::F_RES);
        }
    }

    /// After a helper call: anything may have changed in memory.
    fn forget(&mut self) {
        self.gst = [RegSt::Unloaded; 16];
        self.rip_off = 0;
        self.rip_val = None;
        self.rip_base = None;
        self.ic_add = 0;
        self.ic_base = None;
        self.flags = None;
        self.bits_cf = None;
    }
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
        // Memory operands, segment registers and ADC go to the helper.
        let m = iced_x86::MemoryOperand::with_base_displ(EBX, 8);
        assert!(form(
            Instruction::with2(Code::Mov_r32_rm32, EAX, m).unwrap(),
            false
        )
        .is_none());
        assert!(form(rr(Code::Mov_r32m16_Sreg, EAX, DS), false).is_none());
        assert!(form(rr(Code::Adc_r32_rm32, EAX, ECX), false).is_none());
        // Branches only at the end of a block.
        let j = Instruction::with_branch(Code::Je_rel32_32, 0x2000).unwrap();
        assert!(form(j, false).is_none());
        assert!(matches!(form(j, true), Some(InlineForm::Jcc)));
    }
}
