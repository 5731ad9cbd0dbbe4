//! Where compile time goes: translate, Cranelift compile, and the whole
//! `Jit::compile` (with module definition and finalization) for a typical
//! block, repeated.
use iced_x86::code_asm::*;
use leap_cpu::Cpu;
use std::time::Instant;

fn main() {
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(eax, dword_ptr(ebx + 8)).unwrap();
    a.add(eax, ecx).unwrap();
    a.mov(dword_ptr(ebp - 4), eax).unwrap();
    a.lea(esi, dword_ptr(esi + edi * 4 + 12)).unwrap();
    a.shl(edx, 3).unwrap();
    a.push(eax).unwrap();
    a.cmp(eax, 100).unwrap();
    let mut l = a.create_label();
    a.jne(l).unwrap();
    a.set_label(&mut l).unwrap();
    a.nop().unwrap();
    let code = a.assemble(0x1000).unwrap();
    let mut cpu = Cpu::new(1 << 20);
    cpu.mem.ram[0x1000..0x1000 + code.len()].copy_from_slice(&code);
    cpu.set_flat32();
    cpu.s.rip = 0x1000;
    let block = cpu.fetch_block(&mut leap_cpu::NullBus).unwrap();
    let n = block.insns.len();
    ir_size(&block);
    let isa = leap_jit::host_isa().unwrap();
    let reps = 500;
    let t = Instant::now();
    for _ in 0..reps {
        leap_jit::compile_for_isa(&*isa, &block).unwrap();
    }
    let c = t.elapsed().as_secs_f64() / reps as f64;
    let mut jit = leap_jit::Jit::new().unwrap();
    let t = Instant::now();
    for _ in 0..reps {
        jit.compile(&block).unwrap();
    }
    let j = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{n} insns: translate+compile {:.1} us/block ({:.1} us/insn); Jit::compile {:.1} us/block ({:.1} us/insn)",
        c * 1e6,
        c * 1e6 / n as f64,
        j * 1e6,
        j * 1e6 / n as f64
    );
}

#[allow(dead_code)]
fn ir_size(block: &leap_cpu::blocks::Block) {
    let isa = leap_jit::host_isa().unwrap();
    let tr = leap_jit::Translator::new(&*isa);
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    let (f, _) = tr.function(block, &mut fctx);
    println!(
        "IR: {} instructions, {} blocks",
        f.dfg.num_insts(),
        f.dfg.num_blocks()
    );
    if std::env::var("SHOW_IR").is_ok() {
        println!("{}", f.display());
    }
}
