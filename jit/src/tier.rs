//! Tiering: count how often each decoded block runs, send hot ones to a
//! compiler thread, install the code when it comes back. Until then (and
//! whenever compilation fails) the block keeps running in the interpreter.
//!
//! Blocks are identified by their `Rc<Block>` allocation: the tier keeps a
//! `Weak` to it, so the address cannot be reused while the entry exists,
//! and code compiled for a block is only ever used for that very block
//! (a block re-decoded after self-modifying code is a new allocation and
//! starts cold).

use crate::{CompiledBlock, Jit, JitError};
use crossbeam_channel::{unbounded, Receiver, Sender};
use leap_cpu::blocks::Block;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::thread::JoinHandle;

/// A compile request: the block's key and a copy of it.
struct Request {
    key: usize,
    block: crate::Detached,
}

type Reply = (usize, Result<CompiledBlock, JitError>);

/// A thread that owns a [`Jit`] and compiles blocks sent to it.
pub struct CompileWorker {
    tx: Option<Sender<Request>>,
    rx: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
}

impl CompileWorker {
    pub fn spawn() -> Result<CompileWorker, JitError> {
        // Fail here, not on the thread, if the host has no backend.
        crate::host_isa()?;
        let (tx, req_rx) = unbounded::<Request>();
        let (rep_tx, rx) = unbounded::<Reply>();
        let thread = std::thread::Builder::new()
            .name("leap-jit".into())
            .spawn(move || {
                let mut jit = match Jit::new() {
                    Ok(j) => j,
                    Err(_) => return,
                };
                for req in req_rx {
                    let r = jit.compile(&req.block.0);
                    if rep_tx.send((req.key, r)).is_err() {
                        break;
                    }
                }
            })
            .map_err(crate::err)?;
        Ok(CompileWorker {
            tx: Some(tx),
            rx,
            thread: Some(thread),
        })
    }

    fn request(&self, key: usize, block: &Block) -> bool {
        let req = Request {
            key,
            block: crate::copy_block(block),
        };
        self.tx.as_ref().is_some_and(|tx| tx.send(req).is_ok())
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

enum State {
    /// Runs so far, below the threshold.
    Cold(u32),
    /// Sent to the worker.
    Compiling,
    Ready(Rc<CompiledBlock>),
    /// Compilation failed: stay in the interpreter.
    Failed,
}

struct Entry {
    block: Weak<Block>,
    state: State,
}

/// Tiering statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    pub requested: u64,
    pub installed: u64,
    pub failed: u64,
}

/// Per-block run counters and the compiled code for hot blocks.
pub struct Tier {
    threshold: u32,
    worker: CompileWorker,
    map: HashMap<usize, Entry>,
    pub stats: TierStats,
}

impl Tier {
    /// Compile blocks after they have run `threshold` times.
    pub fn new(threshold: u32) -> Result<Tier, JitError> {
        Ok(Tier {
            threshold,
            worker: CompileWorker::spawn()?,
            map: HashMap::new(),
            stats: TierStats::default(),
        })
    }

    /// Note one more run of `block` and return its compiled code if it is
    /// installed. Call before running the block.
    pub fn enter(&mut self, block: &Rc<Block>) -> Option<Rc<CompiledBlock>> {
        self.install_ready();
        let key = Rc::as_ptr(block) as usize;
        let e = self.map.entry(key).or_insert_with(|| Entry {
            block: Rc::downgrade(block),
            state: State::Cold(0),
        });
        match &mut e.state {
            State::Ready(c) => Some(c.clone()),
            State::Cold(n) => {
                *n += 1;
                if *n >= self.threshold {
                    if self.worker.request(key, block) {
                        e.state = State::Compiling;
                        self.stats.requested += 1;
                    } else {
                        e.state = State::Failed;
                        self.stats.failed += 1;
                    }
                }
                None
            }
            State::Compiling | State::Failed => None,
        }
    }

    /// Take finished compilations from the worker.
    pub fn install_ready(&mut self) {
        while let Ok((key, r)) = self.worker.rx.try_recv() {
            let Some(e) = self.map.get_mut(&key) else {
                continue;
            };
            match r {
                Ok(c) => {
                    e.state = State::Ready(Rc::new(c));
                    self.stats.installed += 1;
                }
                Err(_) => {
                    e.state = State::Failed;
                    self.stats.failed += 1;
                }
            }
        }
    }

    /// Wait for every requested compilation (tests, deterministic runs).
    pub fn wait_idle(&mut self) {
        while self
            .map
            .values()
            .any(|e| matches!(e.state, State::Compiling))
        {
            match self.worker.rx.recv() {
                Ok(reply) => {
                    let (key, r) = reply;
                    if let Some(e) = self.map.get_mut(&key) {
                        e.state = match r {
                            Ok(c) => {
                                self.stats.installed += 1;
                                State::Ready(Rc::new(c))
                            }
                            Err(_) => {
                                self.stats.failed += 1;
                                State::Failed
                            }
                        };
                    }
                }
                Err(_) => break,
            }
        }
    }

    /// Drop entries whose block is gone (invalidated and no longer cached).
    pub fn prune(&mut self) {
        self.map
            .retain(|_, e| e.block.strong_count() > 0 || matches!(e.state, State::Compiling));
    }

    /// Blocks tracked (cold, compiling or compiled).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
