//! Tiering: the run loop (`leap_cpu::tier`) hands over blocks that got hot;
//! they are compiled on a worker thread (or at once, for `--jit always`)
//! and the code is attached to the block when it comes back. Until then,
//! and whenever compilation fails, the block keeps running in the
//! interpreter. Both tiers have the same semantics, so when the code
//! arrives changes nothing but speed.
//!
//! The code cache is bounded: when the machine code of the current
//! generation passes the limit, a fresh `Jit` (a new Cranelift module) is
//! started and the run loop drops every decoded block; the old module's
//! memory is freed when the last block holding its code is gone.

use crate::{CompiledBlock, Jit, JitError};
use crossbeam_channel::{unbounded, Receiver, Sender};
use leap_cpu::blocks::Block;
use leap_cpu::tier::{CompiledCode, Tiering};
use leap_cpu::{Bus, Cpu, Exit};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default bound on generated code per generation.
pub const DEFAULT_CODE_LIMIT: usize = 64 << 20;

impl CompiledCode for CompiledBlock {
    #[inline]
    fn run(&self, cpu: &mut Cpu, bus: &mut dyn Bus, end: u64) -> Option<Exit> {
        CompiledBlock::run(self, cpu, bus, end)
    }

    fn chain_node(&self) -> u64 {
        self.node()
    }
}

enum Request {
    Compile {
        key: u64,
        gen: u64,
        block: Box<crate::Detached>,
        sent: Instant,
    },
    /// Start a new code generation: drop the old `Jit`.
    Recycle,
}

struct Reply {
    key: u64,
    gen: u64,
    result: Result<CompiledBlock, JitError>,
    wait: Duration,
    compile: Duration,
}

/// A thread that owns a [`Jit`] and compiles blocks sent to it.
pub struct CompileWorker {
    tx: Option<Sender<Request>>,
    rx: Receiver<Reply>,
    /// Replies sent and not yet received: the run loop polls before every
    /// block while compiles are in flight, and one relaxed load is much
    /// cheaper than asking the channel (which showed up as several per
    /// cent of the Linux boot).
    ready: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl CompileWorker {
    pub fn spawn() -> Result<CompileWorker, JitError> {
        // Fail here, not on the thread, if the host has no backend.
        let first = Jit::new()?;
        let (tx, req_rx) = unbounded::<Request>();
        let (rep_tx, rx) = unbounded::<Reply>();
        let ready = Arc::new(AtomicUsize::new(0));
        let sent_count = ready.clone();
        let thread = std::thread::Builder::new()
            .name("leap-jit".into())
            .spawn(move || {
                let mut jit = Some(first);
                let newest_first = std::env::var("LEAP_JIT_QUEUE").as_deref() != Ok("fifo");
                // Requests waiting here. When the worker falls behind (a
                // boot meets thousands of new hot blocks), the newest are
                // taken first: they are what the guest runs now, while an
                // old request may be for code the guest has left.
                let mut todo: std::collections::VecDeque<Request> = Default::default();
                loop {
                    if todo.is_empty() {
                        match req_rx.recv() {
                            Ok(r) => todo.push_back(r),
                            Err(_) => break,
                        }
                    }
                    todo.extend(req_rx.try_iter());
                    // A recycle makes every request before it stale.
                    if let Some(i) = todo.iter().rposition(|r| matches!(r, Request::Recycle)) {
                        todo.drain(..=i);
                        jit = None;
                    }
                    let req = if newest_first {
                        todo.pop_back()
                    } else {
                        todo.pop_front()
                    };
                    let Some(Request::Compile {
                        key,
                        gen,
                        block,
                        sent,
                    }) = req
                    else {
                        continue;
                    };
                    let start = Instant::now();
                    if jit.is_none() {
                        jit = Jit::new().ok();
                    }
                    let result = match jit.as_mut() {
                        Some(j) => {
                            let members: Vec<&leap_cpu::blocks::Block> = block.1.iter().collect();
                            j.compile_region(&block.0, &members)
                        }
                        None => Err(crate::err("no code generator")),
                    };
                    let reply = Reply {
                        key,
                        gen,
                        result,
                        wait: start - sent,
                        compile: start.elapsed(),
                    };
                    if rep_tx.send(reply).is_err() {
                        break;
                    }
                    sent_count.fetch_add(1, Ordering::Release);
                }
            })
            .map_err(crate::err)?;
        Ok(CompileWorker {
            tx: Some(tx),
            rx,
            ready,
            thread: Some(thread),
        })
    }

    fn send(&self, req: Request) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(req).is_ok())
    }

    /// Wait for the next finished compile; None if the worker is gone.
    fn wait_take(&self) -> Option<Reply> {
        loop {
            if let Some(r) = self.try_take() {
                return Some(r);
            }
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return None;
            }
            std::thread::yield_now();
        }
    }

    /// The next finished compile, if one is waiting.
    fn try_take(&self) -> Option<Reply> {
        if self.ready.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let r = self.rx.try_recv().ok()?;
        self.ready.fetch_sub(1, Ordering::Relaxed);
        Some(r)
    }
}

impl Drop for CompileWorker {
    fn drop(&mut self) {
        // Closing the request channel ends the thread's loop.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Tiering statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    pub requested: u64,
    pub installed: u64,
    pub failed: u64,
    /// Guest instructions in installed blocks.
    pub insns: u64,
    /// Machine code bytes of the current generation / of all generations.
    pub code_bytes: usize,
    pub code_bytes_total: usize,
    /// Code cache recycles.
    pub recycles: u64,
    /// Requests compiled as a region (the block with others of its page).
    pub regions: u64,
    pub compile_ns: u64,
    /// Time requests spent queued before the worker took them (sum, max).
    pub wait_ns: u64,
    pub max_wait_ns: u64,
}

enum Compiler {
    /// Compile on the calling thread (`--jit always`: deterministic, the
    /// code is there before the block's first run).
    Inline(Box<Jit>),
    Worker(CompileWorker),
}

/// Compiles hot blocks and attaches their code (implements the CPU's
/// [`Tiering`] seam).
pub struct Tier {
    compiler: Compiler,
    /// Blocks sent and not back yet, by request key.
    waiting: HashMap<u64, Weak<Block>>,
    next_key: u64,
    /// Code generation: replies from before a recycle are dropped.
    gen: u64,
    code_limit: usize,
    /// `LEAP_JIT_WAIT=1`: a background tier waits for each compile it
    /// asks for, so which blocks run compiled no longer depends on thread
    /// timing (tests of short guests that could end before any reply).
    wait_each: bool,
    /// Compile hot loops of several blocks as regions (`LEAP_JIT_REGIONS=0`
    /// turns it off, to compare).
    regions: bool,
    pub stats: TierStats,
}

impl Tier {
    /// A tier compiling on a worker thread.
    pub fn background() -> Result<Tier, JitError> {
        Ok(Tier::with(Compiler::Worker(CompileWorker::spawn()?)))
    }

    /// A tier compiling synchronously inside `hot`.
    pub fn inline() -> Result<Tier, JitError> {
        Ok(Tier::with(Compiler::Inline(Box::new(Jit::new()?))))
    }

    fn with(compiler: Compiler) -> Tier {
        Tier {
            compiler,
            waiting: HashMap::new(),
            next_key: 0,
            gen: 0,
            code_limit: DEFAULT_CODE_LIMIT,
            wait_each: std::env::var("LEAP_JIT_WAIT").as_deref() == Ok("1"),
            regions: std::env::var("LEAP_JIT_REGIONS").as_deref() != Ok("0"),
            stats: TierStats::default(),
        }
    }

    /// Bound the machine code kept per generation (bytes).
    pub fn set_code_limit(&mut self, bytes: usize) {
        self.code_limit = bytes.max(1);
    }

    fn accept(
        &mut self,
        block: Option<Rc<Block>>,
        result: Result<CompiledBlock, JitError>,
        wait: Duration,
        compile: Duration,
    ) {
        self.stats.compile_ns += compile.as_nanos() as u64;
        let wait = wait.as_nanos() as u64;
        self.stats.wait_ns += wait;
        self.stats.max_wait_ns = self.stats.max_wait_ns.max(wait);
        match result {
            Ok(c) => {
                self.stats.installed += 1;
                self.stats.insns += c.stats.insns as u64;
                self.stats.code_bytes += c.code_size;
                self.stats.code_bytes_total += c.code_size;
                if let Some(b) = block {
                    b.jit.install(Rc::new(c));
                }
            }
            Err(_) => self.stats.failed += 1,
        }
    }

    /// Start a new generation if this one's code is over the limit.
    /// True when it did (the caller must drop every decoded block).
    fn recycle_if_full(&mut self) -> bool {
        if self.stats.code_bytes < self.code_limit {
            return false;
        }
        self.gen += 1;
        self.stats.recycles += 1;
        self.stats.code_bytes = 0;
        self.waiting.clear();
        match &mut self.compiler {
            Compiler::Inline(j) => match Jit::new() {
                Ok(n) => **j = n,
                Err(_) => return false,
            },
            Compiler::Worker(w) => {
                w.send(Request::Recycle);
            }
        }
        true
    }

    fn take(&mut self, r: Reply) {
        if r.gen != self.gen {
            return;
        }
        let block = self.waiting.remove(&r.key).and_then(|w| w.upgrade());
        self.accept(block, r.result, r.wait, r.compile);
    }
}

impl Tiering for Tier {
    fn hot(&mut self, block: &Rc<Block>, near: &[Rc<Block>]) {
        self.stats.requested += 1;
        let members: Vec<&Block> = if self.regions {
            crate::translate::region_members(block, near)
                .into_iter()
                .map(|i| &*near[i])
                .collect()
        } else {
            Vec::new()
        };
        if !members.is_empty() {
            self.stats.regions += 1;
        }
        match &mut self.compiler {
            Compiler::Inline(jit) => {
                let start = Instant::now();
                let result = jit.compile_region(block, &members);
                let t = start.elapsed();
                self.accept(Some(block.clone()), result, Duration::ZERO, t);
            }
            Compiler::Worker(w) => {
                let key = self.next_key;
                self.next_key += 1;
                let req = Request::Compile {
                    key,
                    gen: self.gen,
                    block: Box::new(crate::copy_region(block, &members)),
                    sent: Instant::now(),
                };
                if w.send(req) {
                    self.waiting.insert(key, Rc::downgrade(block));
                    if self.wait_each {
                        if let Some(r) = w.wait_take() {
                            self.take(r);
                        }
                    }
                } else {
                    self.stats.failed += 1;
                }
            }
        }
    }

    fn poll(&mut self) -> bool {
        while let Compiler::Worker(w) = &self.compiler {
            match w.try_take() {
                Some(r) => self.take(r),
                None => break,
            }
        }
        self.recycle_if_full()
    }

    fn pending(&self) -> usize {
        match self.compiler {
            // Inline compiles attach at once; poll only to bound the cache.
            Compiler::Inline(_) => usize::from(self.stats.code_bytes >= self.code_limit),
            Compiler::Worker(_) => self.waiting.len(),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn report(&self) -> String {
        let s = &self.stats;
        let per_insn = if s.insns > 0 {
            s.compile_ns as f64 / s.insns as f64 / 1000.0
        } else {
            0.0
        };
        let avg_wait = if s.installed + s.failed > 0 {
            s.wait_ns as f64 / (s.installed + s.failed) as f64 / 1000.0
        } else {
            0.0
        };
        format!(
            "jit: {} blocks requested, {} compiled ({} guest instructions), {} failed; \
             compile {:.1} us/insn; queue wait avg {:.0} us, max {:.0} us; \
             code {} KiB now, {} KiB total, {} recycles; {} regions",
            s.requested,
            s.installed,
            s.insns,
            s.failed,
            per_insn,
            avg_wait,
            s.max_wait_ns as f64 / 1000.0,
            s.code_bytes / 1024,
            s.code_bytes_total / 1024,
            s.recycles,
            s.regions
        )
    }
}
