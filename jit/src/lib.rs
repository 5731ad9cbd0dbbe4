//! leap-jit: compiles the interpreter's decoded blocks to host code with
//! Cranelift.
//!
//! A [`CompiledBlock`] has the same contract as `Cpu::exec_block`: same
//! instructions retired, same precise state on a fault, same budget and
//! `end_block` rules, so a run is identical whichever tier executes a block.
//! Generated code reaches everything through the one context pointer it is
//! called with ([`runtime::JitCtx`]): CPU state and helpers by fixed
//! offsets, no symbols and no relocations, so the same IR compiles for any
//! Cranelift target ([`compile_for_isa`]).

mod code_arena;
pub mod runtime;
pub mod tier;
pub mod translate;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Module};
use leap_cpu::blocks::Block;
use leap_cpu::tier::ChainSlot;
use leap_cpu::{Bus, Cpu, Exit};
use runtime::{ChainNode, JitCtx, HELPERS, OWN_SLOTS};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
pub use tier::{CompileWorker, Tier, TierStats};
pub use translate::{inline_form, InlineForm, TranslateStats, Translator};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitError(pub String);

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "jit: {}", self.0)
    }
}

impl std::error::Error for JitError {}

pub(crate) fn err(e: impl fmt::Display) -> JitError {
    JitError(e.to_string())
}

fn shared_flags() -> settings::Builder {
    let mut f = settings::builder();
    let opt = std::env::var("LEAP_JIT_OPT").unwrap_or_else(|_| "speed".into());
    f.set("opt_level", &opt).unwrap();
    if let Ok(ra) = std::env::var("LEAP_JIT_REGALLOC") {
        f.set("regalloc_algorithm", &ra).unwrap();
    }
    // The IR comes from our own translator, checked by tests; verifying
    // every function again costs a large share of the compile time.
    f.set("enable_verifier", "false").unwrap();
    f.set("is_pic", "false").unwrap();
    f.set("use_colocated_libcalls", "false").unwrap();
    // Cranelift's tail calls (chained blocks) rely on frame pointers.
    f.set("preserve_frame_pointers", "true").unwrap();
    f
}

/// The Cranelift ISA for the host.
pub fn host_isa() -> Result<OwnedTargetIsa, JitError> {
    let b = cranelift_native::builder().map_err(err)?;
    b.finish(settings::Flags::new(shared_flags())).map_err(err)
}

/// A Cranelift ISA by target name (`x86_64`, `aarch64`, `riscv64gc`,
/// `s390x`, or a full triple), with that target's baseline features.
pub fn isa_by_name(name: &str) -> Result<OwnedTargetIsa, JitError> {
    let triple: target_lexicon::Triple = name.parse().map_err(err)?;
    let b = cranelift_codegen::isa::lookup(triple).map_err(err)?;
    b.finish(settings::Flags::new(shared_flags())).map_err(err)
}

/// Machine code size of `block` compiled for `isa` (any target; nothing is
/// run). Fails if the code would need a relocation.
pub fn compile_for_isa(isa: &dyn TargetIsa, block: &Block) -> Result<usize, JitError> {
    let tr = Translator::new(isa);
    let mut fctx = FunctionBuilderContext::new();
    let (func, _) = tr.function(block, &mut fctx);
    let mut ctx = Context::for_function(func);
    let code = ctx
        .compile(isa, &mut ControlPlane::default())
        .map_err(|e| err(format!("{:?}", e.inner)))?;
    if !code.buffer.relocs().is_empty() {
        return Err(err(format!(
            "{} relocation(s) in generated code",
            code.buffer.relocs().len()
        )));
    }
    Ok(code.code_info().total_size as usize)
}

/// Owns the executable memory and the chaining nodes of every block
/// compiled by one [`Jit`]; freed when the `Jit` and all its blocks are
/// gone.
struct CodeOwner {
    module: Mutex<Option<JITModule>>,
    /// `Box<ChainNode>`s as raw addresses: generated code and the run loop
    /// write their slots through raw pointers, so no Rust reference to a
    /// node is kept.
    nodes: Mutex<Vec<usize>>,
    /// Generation id, unique in the process (`ChainNode::owner`).
    id: u64,
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

impl CodeOwner {
    fn new(module: JITModule) -> CodeOwner {
        CodeOwner {
            module: Mutex::new(Some(module)),
            nodes: Mutex::new(Vec::new()),
            id: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Drop for CodeOwner {
    fn drop(&mut self) {
        if let Some(m) = self.module.get_mut().ok().and_then(|m| m.take()) {
            // SAFETY: every CompiledBlock holds an Arc to this owner, so no
            // pointer into the code outlives it.
            unsafe { m.free_memory() };
        }
        if let Ok(nodes) = self.nodes.get_mut() {
            for &n in nodes.iter() {
                // SAFETY: made by `Box::into_raw` in `Jit::compile`, freed
                // only here; no block of this generation is left to use it.
                drop(unsafe { Box::from_raw(n as *mut ChainNode) });
            }
        }
    }
}

/// Address space reserved for one code generation's code: far above the
/// generation's bound (`tier::DEFAULT_CODE_LIMIT`), and only what is
/// written costs memory.
const ARENA_SIZE: usize = 1 << 30;

/// Compiles blocks for the host.
pub struct Jit {
    owner: Arc<CodeOwner>,
    translator: Translator,
    ctx: Context,
    fctx: FunctionBuilderContext,
    tramp: Trampoline,
    /// The chain stub (`Translator::chain_stub`) of this generation.
    stub: u64,
}

/// Calls a block's code (which uses the `tail` convention, so that blocks
/// can tail-call each other) from Rust: `(ctx, entry) -> status`.
type Trampoline = unsafe extern "C" fn(*mut JitCtx, u64) -> u64;

impl Jit {
    pub fn new() -> Result<Jit, JitError> {
        let isa = host_isa()?;
        let translator = Translator::new(&*isa);
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        if let Some(arena) = code_arena::CodeArena::new(ARENA_SIZE) {
            jb.memory_provider(Box::new(arena));
        }
        let mut module = JITModule::new(jb);
        let mut ctx = Context::new();
        let mut fctx = FunctionBuilderContext::new();
        let mut define = |func: cranelift_codegen::ir::Function| -> Result<*const u8, JitError> {
            ctx.func = func;
            ctx.set_disasm(dump_path().is_some());
            let id = module
                .declare_anonymous_function(&ctx.func.signature)
                .map_err(err)?;
            module
                .define_function(id, &mut ctx)
                .map_err(|e| err(format!("{e:?}")))?;
            if let (Some(path), Some(code)) = (dump_path(), ctx.compiled_code()) {
                let text = format!(
                    "=== runtime function, {} bytes\n{}",
                    code.code_info().total_size,
                    code.vcode.as_deref().unwrap_or("")
                );
                append_dump(path, &text);
            }
            module.clear_context(&mut ctx);
            module.finalize_definitions().map_err(err)?;
            Ok(module.get_finalized_function(id))
        };
        let ptr = define(translator.trampoline(&mut fctx))?;
        let stub = define(translator.chain_stub(&mut fctx))? as u64;
        // SAFETY: built by `Translator::trampoline`, which is this type
        // under the host's default calling convention.
        let tramp = unsafe { std::mem::transmute::<*const u8, Trampoline>(ptr) };
        Ok(Jit {
            owner: Arc::new(CodeOwner::new(module)),
            translator,
            ctx,
            fctx,
            tramp,
            stub,
        })
    }

    /// Compile `block` to host code.
    pub fn compile(&mut self, block: &Block) -> Result<CompiledBlock, JitError> {
        self.compile_region(block, &[])
    }

    /// Compile `block` with `members` (blocks of its page it reaches by
    /// direct branches, see `translate::region_members`) into one
    /// function: a branch between them stays inside the host code.
    pub fn compile_region(
        &mut self,
        block: &Block,
        members: &[&Block],
    ) -> Result<CompiledBlock, JitError> {
        let mut all = vec![block];
        all.extend(members);
        let (func, stats) = self.translator.function_region(&all, &mut self.fctx);
        let sig = func.signature.clone();
        self.ctx.clear();
        let dump = dump_path();
        self.ctx.set_disasm(dump.is_some());
        let clif = dump.map(|_| func.display().to_string());
        self.ctx.func = func;
        let mut guard = self.owner.module.lock().map_err(err)?;
        let m = guard.as_mut().ok_or_else(|| err("code memory freed"))?;
        let id = m.declare_anonymous_function(&sig).map_err(err)?;
        let r = m.define_function(id, &mut self.ctx);
        if let Err(e) = r {
            self.ctx.clear();
            return Err(err(format!("{e:?}")));
        }
        let code_size = self
            .ctx
            .compiled_code()
            .map(|c| c.code_info().total_size as usize)
            .unwrap_or(0);
        if let Some(path) = dump {
            dump_block(path, &all, id, clif.as_deref().unwrap_or(""), &self.ctx);
        }
        m.clear_context(&mut self.ctx);
        m.finalize_definitions().map_err(err)?;
        let ptr = m.get_finalized_function(id);
        drop(guard);
        let block = Box::new(copy_region(block, members));
        let node = Box::into_raw(Box::new(ChainNode {
            entry: ptr as u64,
            block: &block.0 as *const Block as u64,
            owner: self.owner.id,
            len: block.0.insns.len() as u64,
            members: block.1.as_ptr() as u64,
            slots: [ChainSlot::EMPTY; OWN_SLOTS],
        }));
        self.owner.nodes.lock().map_err(err)?.push(node as usize);
        Ok(CompiledBlock {
            tramp: self.tramp,
            stub: self.stub,
            node: node as usize,
            block,
            stats,
            code_size,
            _owner: self.owner.clone(),
        })
    }
}

/// `LEAP_JIT_DUMP=FILE`: append every compiled block (guest instructions,
/// Cranelift IR, host code) to FILE, to see what hot guest code became.
fn dump_path() -> Option<&'static str> {
    static PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::env::var("LEAP_JIT_DUMP").ok())
        .as_deref()
}

fn dump_block(path: &str, blocks: &[&Block], id: FuncId, clif: &str, ctx: &Context) {
    use iced_x86::Formatter;
    let block = blocks[0];
    let mut text = format!(
        // `id` is the function's perf symbol (`.Lfn<hex id>`).
        "=== block phys {:#x} (fn {:x}), {} insns, code size {}{}\n",
        block.phys,
        id.as_u32(),
        block.insns.len(),
        block.code_size,
        if blocks.len() > 1 {
            format!(", region of {} blocks", blocks.len())
        } else {
            String::new()
        }
    );
    let mut fmt = iced_x86::IntelFormatter::new();
    for (m, b) in blocks.iter().enumerate() {
        if m > 0 {
            text += &format!("  -- member {m}, phys {:#x}\n", b.phys);
        }
        for i in &b.insns {
            let mut s = String::new();
            fmt.format(&i.inst, &mut s);
            text += &format!("  {:016x}  {s}\n", i.inst.ip());
        }
    }
    text += "--- Cranelift IR\n";
    text += clif;
    if let Some(c) = ctx.compiled_code() {
        text += &format!("--- host code, {} bytes\n", c.code_info().total_size);
        if let Some(v) = &c.vcode {
            text += v;
        }
    }
    append_dump(path, &text);
}

fn append_dump(path: &str, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

pub(crate) fn copy_region(b: &Block, members: &[&Block]) -> Detached {
    let copy = b.unlinked_copy();
    debug_assert!(copy.has_no_links());
    let members: Vec<Block> = members.iter().map(|m| m.unlinked_copy()).collect();
    Detached(copy, members)
}

/// A block copy that crosses to the compile thread and back. `Block` is not
/// `Send` only because of its successor links (`Weak<Block>`, whose count
/// is not atomic); a copy made by `unlinked_copy` has none, and nothing
/// links it later: links are made by the run loop's `fetch_block` on the
/// cache's own blocks, never on a JIT copy, which only `exec_block` and the
/// step helpers run.
///
/// The second field holds a region's other blocks (`Jit::compile_region`),
/// copied the same way.
pub(crate) struct Detached(pub(crate) Block, pub(crate) Vec<Block>);

// SAFETY: see the type's comment: no `Rc`/`Weak` is ever reachable from a
// detached copy, so moving it between threads shares no reference count.
unsafe impl Send for Detached {}

/// A block's host code, with its own copy of the decoded instructions the
/// helpers run.
pub struct CompiledBlock {
    tramp: Trampoline,
    stub: u64,
    /// Its `ChainNode` (owned by the generation, see `CodeOwner`).
    node: usize,
    /// Boxed: the node points at it.
    block: Box<Detached>,
    pub stats: TranslateStats,
    /// Bytes of machine code.
    pub code_size: usize,
    _owner: Arc<CodeOwner>,
}

impl CompiledBlock {
    /// The decoded block this code was compiled from.
    pub fn block(&self) -> &Block {
        &self.block.0
    }

    /// Run the block: exactly `cpu.exec_block(bus, block, end)`.
    pub fn run(&self, cpu: &mut Cpu, bus: &mut dyn Bus, end: u64) -> Option<Exit> {
        let n = self.block.0.insns.len() as u64;
        // Tracing prints each instruction: the interpreter does that. So
        // it does a block the budget ends inside, or one a stale
        // `end_block` would cut short: compiled code runs only whole.
        if cpu.trace || cpu.end_block || cpu.icount.saturating_add(n - 1) >= end {
            return cpu.exec_block(bus, &self.block.0, end);
        }
        let cpu: *mut Cpu = cpu;
        let bus: *mut (dyn Bus + '_) = bus;
        // SAFETY: only the lifetime bound changes; the pointer is used only
        // during this call, while the borrow it came from is live.
        let bus: *mut (dyn Bus + 'static) = unsafe { std::mem::transmute(bus) };
        let mut ctx = JitCtx {
            // SAFETY: `cpu` is a live, exclusive borrow.
            state: unsafe { &raw mut (*cpu).s },
            cpu,
            helpers: &HELPERS,
            node: self.node as *const ChainNode,
            end,
            bus,
            exit: None,
            stub: self.stub,
        };
        // SAFETY: the code was generated for this context layout; nothing
        // else touches the CPU or the bus while it runs. The node is alive
        // (this block holds its generation).
        unsafe {
            let entry = (*(self.node as *const ChainNode)).entry;
            (self.tramp)(&mut ctx, entry)
        };
        ctx.exit
    }

    /// Address of this block's chaining node.
    pub fn node(&self) -> u64 {
        self.node as u64
    }
}
