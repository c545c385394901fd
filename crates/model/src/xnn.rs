//! Few-row f32 projections on the CPU through XNNPACK's fully-connected operator, with the weight
//! packed once instead of on every call.
//!
//! A decoding step multiplies a handful of rows (one per sequence) by every weight matrix. libtorch
//! sends `x W^T` to MKL, which at 1-16 rows repacks the whole weight for each call (on the 2-core
//! AMD development machine `sgemm_scopy_right16`, the packing, took 37% of a batch-16 generation
//! profile). XNNPACK packs the weight once when the operator is created. Measured there for
//! SmolLM2-135M's 30 layers of seven projections (f32, 2 threads): 16 rows 49.6 -> 30.4 ms, 8 rows
//! 43.8 -> 21.9 ms, 1 row 35.7 -> 15.4 ms; the 49152 x 576 vocabulary projection at 16 rows 18.7 ->
//! 9.1 ms. In a whole batched generation (the engine bench's `gen` mode, tokens/s, MKL -> XNNPACK):
//! batch 1 ~34 -> ~42, 8 ~96 -> ~139, 16 ~110 -> ~175, 32 ~113 -> ~158, 64 ~147 -> ~162; so up to
//! [`MAX_ROWS`] rows go to XNNPACK, and larger products (prefill, training) stay with MKL.
//!
//! Threads: XNNPACK's own thread pool fights libtorch's OpenMP workers, which spin after every
//! parallel op (2-thread XNNPACK inside a generation loop ran 3x slower than MKL). So the weight is
//! split into one column block per libtorch thread, each packed as a single-threaded operator, and
//! the blocks run in one OpenMP parallel region of libtorch's own team (`GOMP_parallel`, found in
//! the process with `dlsym`); each block writes its columns of the output in place.
//!
//! Why by hand: libtorch ships XNNPACK inside `libtorch_cpu.so` and exports its C API, but tch binds
//! none of it, and no crate wraps that copy. The declarations below follow the `xnnpack.h` that the
//! same torch wheel installs (`torch/include/xnnpack.h`), so they match the library we link. The
//! packed operators keep a copy of the weight (memory: about the weights' size again), made on first
//! use and remade when the weight changes (its version counter or storage); they are used only where
//! no gradient flows (the weight and the input do not require grad). `MODRL_XNNPACK=0` turns it off.

use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

use tch::{Device, Kind, Tensor};

/// Up to this many rows a projection without gradients goes through XNNPACK (see the module notes).
pub const MAX_ROWS: i64 = 64;

type XnnStatus = i32;
const XNN_STATUS_SUCCESS: XnnStatus = 0;

#[allow(non_camel_case_types)]
type xnn_operator_t = *mut c_void;

extern "C" {
    fn xnn_initialize(allocator: *const c_void) -> XnnStatus;
    fn xnn_create_fully_connected_nc_f32(
        input_channels: usize,
        output_channels: usize,
        input_stride: usize,
        output_stride: usize,
        kernel: *const f32,
        bias: *const f32,
        output_min: f32,
        output_max: f32,
        flags: u32,
        code_cache: *mut c_void,
        weights_cache: *mut c_void,
        op_out: *mut xnn_operator_t,
    ) -> XnnStatus;
    fn xnn_reshape_fully_connected_nc_f32(
        op: xnn_operator_t,
        batch_size: usize,
        threadpool: *mut c_void,
    ) -> XnnStatus;
    fn xnn_setup_fully_connected_nc_f32(
        op: xnn_operator_t,
        input: *const f32,
        output: *mut f32,
    ) -> XnnStatus;
    fn xnn_run_operator(op: xnn_operator_t, threadpool: *mut c_void) -> XnnStatus;
    fn xnn_delete_operator(op: xnn_operator_t) -> XnnStatus;
}

/// libgomp's entry to a parallel region: runs `f(data)` on `threads` threads of the caller's team.
type GompParallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, u32, u32);
type OmpThreadNum = unsafe extern "C" fn() -> i32;

/// The process's XNNPACK state: initialised once; the OpenMP entry points of libtorch's runtime
/// when found (else the column blocks run one after another). `None` when disabled or when
/// XNNPACK cannot start.
struct Runtime {
    omp: Option<(GompParallel, OmpThreadNum)>,
}

fn runtime() -> Option<&'static Runtime> {
    static RT: OnceLock<Option<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        if std::env::var("MODRL_XNNPACK").is_ok_and(|v| v == "0") {
            return None;
        }
        // SAFETY: xnn_initialize takes an optional allocator (null = the default) and may be called
        // more than once (libtorch's own uses call it too). dlsym looks the two libgomp functions up
        // in the libraries already loaded (libtorch_cpu's libgomp); their C signatures are libgomp's
        // stable ABI.
        unsafe {
            if xnn_initialize(std::ptr::null()) != XNN_STATUS_SUCCESS {
                return None;
            }
            let par = libc::dlsym(libc::RTLD_DEFAULT, c"GOMP_parallel".as_ptr());
            let num = libc::dlsym(libc::RTLD_DEFAULT, c"omp_get_thread_num".as_ptr());
            let omp = (!par.is_null() && !num.is_null()).then(|| {
                (
                    std::mem::transmute::<*mut c_void, GompParallel>(par),
                    std::mem::transmute::<*mut c_void, OmpThreadNum>(num),
                )
            });
            Some(Runtime { omp })
        }
    })
    .as_ref()
}

/// One column block of a packed weight: a single-threaded operator for the output columns from
/// `start` to the next block's start.
struct Block {
    op: xnn_operator_t,
    start: usize,
}

/// A weight (and bias) packed into XNNPACK fully-connected operators, one per column block, with
/// what it was packed from, so that a changed weight is noticed.
struct Operator {
    blocks: Vec<Block>,
    source: (usize, i64, usize, i64), // weight data pointer and version, bias pointer and version
    n_in: i64,
    n_out: i64,
}

// SAFETY: the operators are only used under the Mutex of their `Packed`, one call at a time.
unsafe impl Send for Operator {}

impl Drop for Operator {
    fn drop(&mut self) {
        for b in &self.blocks {
            // SAFETY: each `op` came from xnn_create_fully_connected_nc_f32 and is deleted once.
            unsafe {
                xnn_delete_operator(b.op);
            }
        }
    }
}

impl Operator {
    /// Pack `w` `[n_out, n_in]` (and `bias`) into `parts` column blocks.
    fn new(w: &Tensor, bias: Option<&Tensor>, parts: usize) -> Option<Operator> {
        let (n_out, n_in) = w.size2().ok()?;
        let parts = parts.clamp(1, n_out.max(1) as usize);
        let mut op = Operator {
            blocks: Vec::with_capacity(parts),
            source: source_of(w, bias),
            n_in,
            n_out,
        };
        let (n_out, n_in) = (n_out as usize, n_in as usize);
        for p in 0..parts {
            let (start, end) = (n_out * p / parts, n_out * (p + 1) / parts);
            let mut handle: xnn_operator_t = std::ptr::null_mut();
            // SAFETY: the weight is a contiguous [n_out, n_in] f32 matrix (rows start..end are
            // (end - start) x n_in values from row `start`) and the bias n_out f32 values; XNNPACK
            // copies both into its own packed buffer during the call. Output rows have stride n_out.
            let status = unsafe {
                xnn_create_fully_connected_nc_f32(
                    n_in,
                    end - start,
                    n_in,
                    n_out,
                    (w.data_ptr() as *const f32).add(start * n_in),
                    bias.map_or(std::ptr::null(), |b| {
                        (b.data_ptr() as *const f32).add(start)
                    }),
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut handle,
                )
            };
            if status != XNN_STATUS_SUCCESS || handle.is_null() {
                return None; // the blocks made so far are deleted with `op`
            }
            op.blocks.push(Block { op: handle, start });
        }
        Some(op)
    }
}

/// What each thread of the parallel region needs: the blocks, the team's thread index, and a flag
/// any failed block sets.
struct Region<'a> {
    blocks: &'a [Block],
    thread_num: OmpThreadNum,
    failed: std::sync::atomic::AtomicBool,
}

extern "C" fn run_block(data: *mut c_void) {
    // SAFETY: `data` is the &Region passed to GOMP_parallel, alive until it returns; thread t runs
    // block t alone (the team has as many threads as blocks).
    unsafe {
        let r = &*(data as *const Region);
        let t = (r.thread_num)() as usize;
        if let Some(b) = r.blocks.get(t) {
            if xnn_run_operator(b.op, std::ptr::null_mut()) != XNN_STATUS_SUCCESS {
                r.failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn source_of(w: &Tensor, bias: Option<&Tensor>) -> (usize, i64, usize, i64) {
    (
        w.data_ptr() as usize,
        w.internal_version(),
        bias.map_or(0, |b| b.data_ptr() as usize),
        bias.map_or(0, |b| b.internal_version()),
    )
}

/// The packed form of one weight matrix, made on first use and remade when the weight changes.
/// Lives beside the weight (in its `Linear`, or the model for the vocabulary projection).
#[derive(Default)]
pub struct Packed(Mutex<Option<Operator>>);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Packed")
    }
}

/// Whether XNNPACK runs here (not turned off, and it started).
pub fn available() -> bool {
    runtime().is_some()
}

impl Packed {
    /// Whether a packed operator is held now (for tests).
    pub fn is_packed(&self) -> bool {
        self.0.lock().is_ok_and(|s| s.is_some())
    }

    /// `x W^T + b` for `x` `[rows, in]` (contiguous f32 on the CPU, `rows` in 1..=MAX_ROWS) when
    /// XNNPACK can do it here; `None` sends the caller to libtorch.
    pub fn project(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Option<Tensor> {
        let (rows, k) = x.size2().ok()?;
        if !(1..=MAX_ROWS).contains(&rows)
            || x.device() != Device::Cpu
            || x.kind() != Kind::Float
            || w.kind() != Kind::Float
            || bias.is_some_and(|b| b.kind() != Kind::Float)
            || x.requires_grad()
            || w.requires_grad()
            || bias.is_some_and(|b| b.requires_grad())
            || !w.is_contiguous()
            || bias.is_some_and(|b| !b.is_contiguous())
        {
            return None;
        }
        let (n_out, n_in) = w.size2().ok()?;
        if n_in != k || bias.is_some_and(|b| b.numel() as i64 != n_out) {
            return None;
        }
        let rt = runtime()?;
        let parts = if rt.omp.is_some() {
            tch::get_num_threads().max(1) as usize
        } else {
            1
        };
        let mut slot = self.0.lock().ok()?;
        if slot
            .as_ref()
            .is_none_or(|o| o.source != source_of(w, bias) || o.blocks.len() != parts)
        {
            *slot = None; // free the stale copy before packing the new one
            *slot = Some(Operator::new(w, bias, parts)?);
        }
        let o = slot.as_ref()?;
        let x = x.contiguous();
        let y = Tensor::empty([rows, o.n_out], (Kind::Float, Device::Cpu));
        debug_assert_eq!(o.n_in, k);
        // SAFETY: x is [rows, n_in] and y [rows, n_out], both contiguous f32 and alive for the call;
        // block b writes columns b.start.. of every row of y (row stride n_out, set at creation);
        // the operators are used by this call alone (the Mutex).
        unsafe {
            for b in &o.blocks {
                if xnn_reshape_fully_connected_nc_f32(b.op, rows as usize, std::ptr::null_mut())
                    != XNN_STATUS_SUCCESS
                    || xnn_setup_fully_connected_nc_f32(
                        b.op,
                        x.data_ptr() as *const f32,
                        (y.data_ptr() as *mut f32).add(b.start),
                    ) != XNN_STATUS_SUCCESS
                {
                    return None;
                }
            }
            match rt.omp {
                Some((parallel, thread_num)) if o.blocks.len() > 1 => {
                    let region = Region {
                        blocks: &o.blocks,
                        thread_num,
                        failed: std::sync::atomic::AtomicBool::new(false),
                    };
                    let data = &region as *const Region as *mut c_void;
                    parallel(run_block, data, o.blocks.len() as u32, 0);
                    if region.failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return None;
                    }
                }
                _ => {
                    for b in &o.blocks {
                        if xnn_run_operator(b.op, std::ptr::null_mut()) != XNN_STATUS_SUCCESS {
                            return None;
                        }
                    }
                }
            }
        }
        Some(y)
    }
}
