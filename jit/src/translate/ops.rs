//! IR for each inline instruction form, with the interpreter handler's
//! semantics (cpu/src/ops: alu, shift, muldiv, stack, control).

use super::flags::sext;
use super::{low_bits, AluOp, Bits, Count, InlineForm, Pick, ShiftOp, Src, Tx};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{InstBuilder, Value};
use leap_cpu::flags::{size_mask, FlagOp};
use leap_cpu::insn::{Insn, OpKind, Operand};
use leap_cpu::state::{EAX, EBP, EDX, ESP, FLAG_AF, FLAG_CF, FLAG_OF};

impl Tx<'_> {
    /// Register or memory operand `o` of `insn` (memory guarded).
    fn read_rm(&mut self, insn: &Insn, o: &Operand) -> Value {
        if o.kind == OpKind::Reg {
            self.get(o)
        } else {
            self.load_operand(insn, o.size)
        }
    }

    fn src_value(&mut self, insn: &Insn, src: Src, size: u8) -> Value {
        match src {
            Src::Reg(r) => self.get(&r),
            Src::Imm(i) => self.imm(i & size_mask(size)),
            Src::Mem => self.load_operand(insn, size),
        }
    }

    /// Everything but branches, CALL and RET.
    pub(super) fn emit(&mut self, insn: &Insn, form: InlineForm) {
        let d = insn.op[0];
        let s = insn.op[1];
        let size = d.size;
        match form {
            InlineForm::MovRR => {
                let v = self.get(&s);
                self.put(&d, v);
            }
            InlineForm::MovRI => {
                let v = self.imm(insn.imm);
                self.put(&d, v);
            }
            InlineForm::Load => {
                let v = self.load_operand(insn, size);
                self.put(&d, v);
            }
            InlineForm::Store(src) => {
                let v = match src {
                    Src::Imm(i) => self.imm(i & size_mask(s.size)),
                    _ => self.src_value(insn, src, size),
                };
                self.store_operand(insn, size, v);
            }
            InlineForm::Alu(op, src) => {
                let a = self.get(&d);
                let b = self.src_value(insn, src, size);
                let r = self.alu(op, size, a, b);
                if !matches!(op, AluOp::Cmp | AluOp::Test) {
                    self.put(&d, r);
                }
            }
            InlineForm::AluMem(op, src) => {
                let b = self.src_value(insn, src, size);
                if matches!(op, AluOp::Cmp | AluOp::Test) {
                    let a = self.load_operand(insn, size);
                    self.alu(op, size, a, b);
                } else {
                    let (a, host) = self.rmw_operand(insn, size);
                    let r = self.alu(op, size, a, b);
                    self.host_store(host, size, r);
                }
            }
            InlineForm::Inc | InlineForm::Dec | InlineForm::Neg | InlineForm::Not => {
                if d.kind == OpKind::Reg {
                    let x = self.get(&d);
                    let r = self.unary(form, size, x);
                    self.put(&d, r);
                } else {
                    let (x, host) = self.rmw_operand(insn, size);
                    let r = self.unary(form, size, x);
                    self.host_store(host, size, r);
                }
            }
            InlineForm::Lea => {
                let ea = self.ea(insn);
                self.put(&d, ea);
            }
            InlineForm::Movx(signed) => {
                let v = self.read_rm(insn, &s);
                let v = if signed {
                    sext(&mut self.b, v, s.size)
                } else {
                    v
                };
                self.put(&d, v);
            }
            InlineForm::Push => {
                let size = insn.osize;
                // A memory source is read (and may fault) before the push.
                let v = match d.kind {
                    OpKind::Imm => self.imm(insn.imm & size_mask(size)),
                    OpKind::Mem => self.read_rm(insn, &d),
                    _ => self.get(&d),
                };
                let sp = self.reg(ESP as u8);
                let (a, nsp) = self.stack_check(sp, -(size as i64), size, true);
                self.guard(a.fail);
                self.host_store(a.host, size, v);
                self.set_reg(ESP as u8, nsp);
            }
            InlineForm::Pop => {
                let size = insn.osize;
                let sp = self.reg(ESP as u8);
                let (a, _) = self.stack_check(sp, 0, size, false);
                self.guard(a.fail);
                let v = self.host_load(a.host, size);
                let nsp = self.sp_add(sp, size as i64);
                // POP ESP: the loaded value wins over the increment.
                self.set_reg(ESP as u8, nsp);
                self.put(&d, v);
            }
            InlineForm::Leave => {
                // `h_leave`: read at EBP (cut to the stack size, which the
                // stack check holds to the code size), then ESP from EBP
                // past the value, and EBP from the value.
                let size = insn.osize;
                let bp = self.reg(EBP as u8);
                let sp = self.reg(ESP as u8);
                let base = match self.code_size {
                    2 => {
                        let hi = self.b.ins().band_imm_s(sp, !0xffff);
                        let lo = self.b.ins().band_imm_s(bp, 0xffff);
                        self.b.ins().bor(hi, lo)
                    }
                    4 => {
                        let hi = self.b.ins().band_imm_s(sp, !0xffff_ffff);
                        let lo = low_bits(&mut self.b, bp, 4);
                        self.b.ins().bor(hi, lo)
                    }
                    _ => bp,
                };
                let (a, _) = self.stack_check(base, 0, size, false);
                self.guard(a.fail);
                let v = self.host_load(a.host, size);
                let nsp = self.sp_add(base, size as i64);
                self.set_reg(ESP as u8, nsp);
                let ebp = Operand {
                    kind: OpKind::Reg,
                    reg: EBP as u8,
                    hi: false,
                    size,
                };
                self.put(&ebp, v);
            }
            InlineForm::Setcc => {
                let c = self.cond(insn.cc);
                let v = self.b.ins().uextend(I64, c);
                if d.kind == OpKind::Reg {
                    self.put(&d, v);
                } else {
                    self.store_operand(insn, 1, v);
                }
            }
            InlineForm::Cmovcc => {
                // The source is read (and may fault) whatever the condition.
                let v = self.read_rm(insn, &s);
                let c = self.cond(insn.cc);
                let cur = self.get(&d);
                // Not moving still zero-extends a 32-bit destination; `put`
                // of the current value does exactly that and nothing else.
                let r = self.b.ins().select(c, v, cur);
                self.put(&d, r);
            }
            InlineForm::Imul => self.imul(insn),
            InlineForm::Shift(op, count) => self.shift(&d, op, count),
            InlineForm::Div(signed) => self.div(insn, signed),
            InlineForm::MulWide(signed) => self.mul_wide(insn, signed),
            InlineForm::Xchg => {
                let x = self.get(&d);
                let y = self.get(&s);
                self.put(&d, y);
                self.put(&s, x);
            }
            InlineForm::Nop => {}
            InlineForm::Sse(op) => self.emit_sse(insn, op),
            InlineForm::Jmp
            | InlineForm::Jcc
            | InlineForm::Call
            | InlineForm::Ret
            | InlineForm::JmpInd
            | InlineForm::CallInd => {
                unreachable!("control transfers are emitted by `branch` and `call_ret`")
            }
        }
    }

    /// `ops::alu::alu` for the inline operations: result and flag record.
    fn alu(&mut self, op: AluOp, size: u8, a: Value, b: Value) -> Value {
        if matches!(op, AluOp::Adc | AluOp::Sbb) {
            // `LazyFlags::set_carry_op`: the carry-in is parked in the
            // word's CF, which the record's CF and the next ADC read.
            let cin = self.cf();
            let c = self.b.ins().uextend(I64, cin);
            let (r, fop) = if op == AluOp::Adc {
                let r = self.b.ins().iadd(a, b);
                (self.b.ins().iadd(r, c), FlagOp::Adc)
            } else {
                let r = self.b.ins().isub(a, b);
                (self.b.ins().isub(r, c), FlagOp::Sbb)
            };
            let r = self.mask_to(r, size);
            self.park_cf(cin);
            self.set_rec(fop, size, a, b, r);
            return r;
        }
        let r = match op {
            AluOp::Add => self.b.ins().iadd(a, b),
            AluOp::Sub | AluOp::Cmp => self.b.ins().isub(a, b),
            AluOp::And | AluOp::Test => self.b.ins().band(a, b),
            AluOp::Or => self.b.ins().bor(a, b),
            AluOp::Xor => self.b.ins().bxor(a, b),
            AluOp::Adc | AluOp::Sbb => unreachable!("carry operations return above"),
        };
        let r = self.mask_to(r, size);
        match op {
            AluOp::Add => self.set_rec(FlagOp::Add, size, a, b, r),
            AluOp::Sub | AluOp::Cmp => self.set_rec(FlagOp::Sub, size, a, b, r),
            _ => {
                let z = self.imm(0);
                self.set_rec(FlagOp::Logic, size, z, z, r);
            }
        }
        r
    }

    /// INC/DEC/NEG/NOT of `x`, with their flags.
    fn unary(&mut self, form: InlineForm, size: u8, x: Value) -> Value {
        match form {
            InlineForm::Inc | InlineForm::Dec => {
                let inc = matches!(form, InlineForm::Inc);
                let r = self.b.ins().iadd_imm_s(x, if inc { 1 } else { -1 });
                let r = self.mask_to(r, size);
                let cf = self.cf();
                self.park_cf(cf);
                let one = self.imm(1);
                let op = if inc { FlagOp::Inc } else { FlagOp::Dec };
                self.set_rec(op, size, x, one, r);
                r
            }
            InlineForm::Neg => {
                let r = self.b.ins().ineg(x);
                let r = self.mask_to(r, size);
                let z = self.imm(0);
                self.set_rec(FlagOp::Neg, size, z, x, r);
                r
            }
            _ => {
                let r = self.b.ins().bnot(x);
                self.mask_to(r, size)
            }
        }
    }

    /// IMUL r, r/m and IMUL r, r/m, imm (`h_imuln` / `h_imul32`): the
    /// flags are explicit values, not a lazy record.
    fn imul(&mut self, insn: &Insn) {
        let d = insn.op[0];
        let s = insn.op[1];
        let size = d.size;
        let (x, y) = if insn.op[2].kind == OpKind::Imm {
            let x = self.read_rm(insn, &s);
            (x, self.imm(insn.imm & size_mask(size)))
        } else {
            let x = self.get(&d);
            (x, self.read_rm(insn, &s))
        };
        let sx = sext(&mut self.b, x, size);
        let sy = sext(&mut self.b, y, size);
        let (lo, fits) = if size == 8 {
            let lo = self.b.ins().imul(sx, sy);
            let hi = self.b.ins().smulhi(sx, sy);
            let sign = self.b.ins().sshr_imm_s(lo, 63);
            (lo, self.b.ins().icmp(IntCC::Equal, hi, sign))
        } else {
            // Both factors fit in 32 bits: the product is exact in 64.
            let p = self.b.ins().imul(sx, sy);
            let lo = self.mask_to(p, size);
            let back = sext(&mut self.b, lo, size);
            (lo, self.b.ins().icmp(IntCC::Equal, back, p))
        };
        self.put(&d, lo);
        let ovf = self.b.ins().bxor_imm_s(fits, 1);
        self.mul_flags(size, lo, ovf);
    }

    /// One-operand MUL/IMUL r/m16/32/64 (`h_mul`, `h_imul1`): the double
    /// product in DX:AX, EDX:EAX or RDX:RAX.
    fn mul_wide(&mut self, insn: &Insn, signed: bool) {
        let src = insn.op[0];
        let size = src.size;
        let y = self.read_rm(insn, &src);
        let rax = self.reg(EAX as u8);
        let x = self.mask_to(rax, size);
        let (lo, hi, ovf) = if size == 8 {
            let b = &mut self.b;
            let lo = b.ins().imul(x, y);
            if signed {
                let hi = b.ins().smulhi(x, y);
                let sign = b.ins().sshr_imm_s(lo, 63);
                (lo, hi, b.ins().icmp(IntCC::NotEqual, hi, sign))
            } else {
                let hi = b.ins().umulhi(x, y);
                (lo, hi, b.ins().icmp_imm_s(IntCC::NotEqual, hi, 0))
            }
        } else {
            // Both factors fit in 32 bits: the product is exact in 64.
            let (x, y) = if signed {
                (sext(&mut self.b, x, size), sext(&mut self.b, y, size))
            } else {
                (x, y)
            };
            let p = self.b.ins().imul(x, y);
            let lo = self.mask_to(p, size);
            let hi = self.b.ins().ushr_imm_s(p, size as i64 * 8);
            let hi = self.mask_to(hi, size);
            let ovf = if signed {
                let back = sext(&mut self.b, lo, size);
                self.b.ins().icmp(IntCC::NotEqual, back, p)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, hi, 0)
            };
            (lo, hi, ovf)
        };
        self.put_wide(size, lo, hi);
        self.mul_flags(size, lo, ovf);
    }

    /// `store_wide` of the interpreter (16, 32 or 64 bits): `lo` to eAX,
    /// `hi` to eDX.
    fn put_wide(&mut self, size: u8, lo: Value, hi: Value) {
        let reg = |r: usize| Operand {
            kind: OpKind::Reg,
            reg: r as u8,
            hi: false,
            size,
        };
        self.put(&reg(EAX), lo);
        self.put(&reg(EDX), hi);
    }

    /// `mul_flags` of the interpreter (`LazyFlags::set_mul`): CF = OF =
    /// `ovf` (0/1 `I8`) and AF clear in the word, ZF, SF and PF from a
    /// `Rot` record of the low half.
    fn mul_flags(&mut self, size: u8, lo: Value, ovf: Value) {
        let w = self.bits_value();
        let b = &mut self.b;
        let ovf = b.ins().uextend(I64, ovf);
        let f = b.ins().imul_imm_s(ovf, (FLAG_CF | FLAG_OF) as i64);
        let w = b.ins().band_imm_s(w, !(FLAG_CF | FLAG_OF | FLAG_AF) as i64);
        let w = b.ins().bor(w, f);
        self.b.def_var(self.v.fbits, w);
        self.t.fl.bits = Bits::Full;
        let z = self.imm(0);
        self.set_rec(FlagOp::Rot, size, z, z, lo);
    }

    /// SHL/SHR/SAR of a register. A zero count changes no flags and no
    /// bits, but a 32-bit register is still zero-extended.
    fn shift(&mut self, d: &Operand, op: ShiftOp, count: Count) {
        let size = d.size;
        let n = match count {
            Count::Imm(0) => {
                if size == 4 {
                    let x = self.get(d);
                    self.put(d, x);
                }
                return;
            }
            Count::Imm(n) => self.imm(n as u64),
            Count::Cl => {
                let c = self.reg(1);
                let c = self
                    .b
                    .ins()
                    .band_imm_s(c, if size == 8 { 0x3f } else { 0x1f });
                // A zero count leaves the old flag record, which the
                // tracking cannot merge with a new one: the interpreter
                // takes that case.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, c, 0);
                self.guard(zero);
                c
            }
        };
        let x = self.get(d);
        let (r, fop) = match op {
            ShiftOp::Shl => (self.b.ins().ishl(x, n), FlagOp::Shl),
            ShiftOp::Shr => (self.b.ins().ushr(x, n), FlagOp::Shr),
            ShiftOp::Sar => {
                let sx = sext(&mut self.b, x, size);
                (self.b.ins().sshr(sx, n), FlagOp::Sar)
            }
            ShiftOp::Rol | ShiftOp::Ror => {
                // Stores its flags itself (`set_rotate_flags`).
                self.rotate(d, op == ShiftOp::Rol, x, n);
                return;
            }
        };
        let r = self.mask_to(r, size);
        self.set_rec(fop, size, x, n, r);
        self.put(d, r);
        if count == Count::Cl {
            self.flush_flags();
        }
    }

    /// DIV/IDIV r/m (`h_div` / `h_idiv`; the flags are left as they
    /// were). The common cases run here: a zero divisor, a quotient that
    /// does not fit, an IDIV by -1 (whose host division could trap) and,
    /// for 64-bit operands, a dividend wider than 64 bits go to the slow
    /// path, where the interpreter divides or raises #DE.
    fn div(&mut self, insn: &Insn, signed: bool) {
        let size = insn.op[0].size;
        let src = insn.op[0];
        let d = self.read_rm(insn, &src);
        let rax = self.reg(EAX as u8);
        let rdx = self.reg(EDX as u8);
        let bits = size as i64 * 8;
        let b = &mut self.b;
        let zero = b.ins().icmp_imm_s(IntCC::Equal, d, 0);
        let (n, d, fail) = if size == 8 {
            // RDX:RAX must be RAX extended (zero or sign).
            let ext = if signed {
                b.ins().sshr_imm_s(rax, 63)
            } else {
                b.ins().iconst(I64, 0)
            };
            let wide = b.ins().icmp(IntCC::NotEqual, rdx, ext);
            (rax, d, b.ins().bor(zero, wide))
        } else {
            let m = size_mask(size) as i64;
            let lo = b.ins().band_imm_s(rax, m);
            let hi = b.ins().band_imm_s(rdx, m);
            let hs = b.ins().ishl_imm_s(hi, bits);
            let n = b.ins().bor(hs, lo);
            if signed {
                (sext(b, n, size * 2), d, zero)
            } else {
                // The quotient fits iff the high half is below the divisor.
                let big = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, hi, d);
                (n, d, b.ins().bor(zero, big))
            }
        };
        let (q, r) = if signed {
            let sd = sext(&mut self.b, d, size);
            let m1 = self.b.ins().icmp_imm_s(IntCC::Equal, sd, -1);
            let fail = self.b.ins().bor(fail, m1);
            self.guard(fail);
            let b = &mut self.b;
            let q = b.ins().sdiv(n, sd);
            let r = b.ins().srem(n, sd);
            if size < 8 {
                let back = sext(b, q, size);
                let out = self.b.ins().icmp(IntCC::NotEqual, back, q);
                self.guard(out);
            }
            (q, r)
        } else {
            self.guard(fail);
            let q = self.b.ins().udiv(n, d);
            let r = self.b.ins().urem(n, d);
            (q, r)
        };
        self.put_wide(size, q, r);
    }

    /// ROL/ROR of register `d` (value `x`) by a nonzero masked count `n`
    /// (`ops::shift::shift_op`): the count is taken modulo the width, and
    /// only CF and OF change.
    fn rotate(&mut self, d: &Operand, left: bool, x: Value, n: Value) {
        let size = d.size;
        let ty = match size {
            1 => I8,
            2 => I16,
            4 => I32,
            _ => I64,
        };
        let b = &mut self.b;
        let v = if size == 8 { x } else { b.ins().ireduce(ty, x) };
        let k = if size == 8 { n } else { b.ins().ireduce(ty, n) };
        let r = if left {
            b.ins().rotl(v, k)
        } else {
            b.ins().rotr(v, k)
        };
        let r = if size == 8 {
            r
        } else {
            b.ins().uextend(I64, r)
        };
        let top = size as i64 * 8 - 1;
        let msb = b.ins().ushr_imm_s(r, top);
        let (cf, of) = if left {
            // CF = the bit rotated into bit 0; OF = MSB xor CF.
            let cf = b.ins().band_imm_s(r, 1);
            let of = b.ins().bxor(msb, cf);
            (cf, of)
        } else {
            // CF = the new MSB; OF = the two top bits differ.
            let next = b.ins().ushr_imm_s(r, top - 1);
            let next = b.ins().band_imm_s(next, 1);
            (msb, b.ins().bxor(msb, next))
        };
        let of = b.ins().ishl_imm_s(of, FLAG_OF.trailing_zeros() as i64);
        let v = b.ins().bor(cf, of);
        self.put(d, r);
        self.set_rotate_flags(v);
    }

    /// CALL rel / RET / JMP r/m / CALL r/m at the end of the block, then
    /// leave (to the next block's code when it can be entered directly).
    /// Their slow path runs the instruction in the interpreter and leaves.
    pub(super) fn call_ret(&mut self, k: usize, insn: &Insn, form: InlineForm) {
        let size = insn.osize;
        let sp = self.reg(ESP as u8);
        match form {
            InlineForm::Call | InlineForm::CallInd => {
                // `h_call_rel` / `h_call_ind`: target (read first), limit
                // check, then the push.
                let next = self.next_rip(insn);
                let target = if matches!(form, InlineForm::Call) {
                    self.b.ins().iadd_imm_s(next, insn.imm as i64)
                } else {
                    self.read_rm(insn, &insn.op[0])
                };
                let target = self.mask_to(target, size);
                let bad = self.branch_bad(target);
                let ret = self.mask_to(next, size);
                let (a, nsp) = self.stack_check(sp, -(size as i64), size, true);
                let fail = self.b.ins().bor(bad, a.fail);
                self.guard(fail);
                self.host_store(a.host, size, ret);
                self.set_reg(ESP as u8, nsp);
                self.push_return(ret);
                let pick = if matches!(form, InlineForm::Call) {
                    Pick::Own(0)
                } else {
                    Pick::Ind
                };
                self.exit_to(target, pick);
            }
            InlineForm::JmpInd => {
                let t = self.read_rm(insn, &insn.op[0]);
                let target = self.mask_to(t, size);
                let bad = self.branch_bad(target);
                self.guard(bad);
                self.exit_to(target, Pick::Ind);
            }
            _ => {
                let (a, _) = self.stack_check(sp, 0, size, false);
                self.guard(a.fail);
                let target = self.host_load(a.host, size);
                let bad = self.branch_bad(target);
                self.guard(bad);
                let extra = if insn.op[0].kind == OpKind::Imm {
                    insn.imm & 0xffff
                } else {
                    0
                };
                let nsp = self.sp_add(sp, size as i64 + extra as i64);
                self.set_reg(ESP as u8, nsp);
                self.exit_to(target, Pick::Ret);
            }
        }
        let slow = self.slow.take().expect("CALL/RET/JMP r/m always guard");
        self.b.switch_to_block(slow);
        self.t = self.pre;
        self.writeback();
        let r = self.step(k);
        self.b.ins().jump(self.leave, &[r.into()]);
    }
}
