//! The error policy for panics, shared by the CLI, the trainer (which runs under the CLI), the
//! server's model thread and the Python package. Model code calls libtorch through `tch`, whose
//! tensor operations panic on a shape, dtype or device error (libtorch's message names the
//! operation and the shapes); so can a bug of ours. A panic must not reach a user as a Rust
//! backtrace or an abort: the work runs under [`run_guarded`], the panic hook keeps where it
//! happened (and prints the usual message with a backtrace only when `RUST_BACKTRACE` is set;
//! panics outside guarded work are reported as Rust reports them), and
//! the panic becomes one line naming the cause, libtorch's first line of message (the operation's
//! shapes), and the place: the first function of ours on the stack when the panic happened inside
//! `tch` (whose own `unwrap` is never the place to look).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Where the last panic of this thread happened (`file:line`), set by the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many [`run_guarded`] calls this thread is inside: the hook only takes over their panics.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Run `f`; a panic becomes `Err(message)` instead of unwinding further.
pub fn run_guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // A panic outside guarded work (another thread, a caller that does not use the
            // guard) is reported as Rust reports it.
            if DEPTH.with(Cell::get) == 0 {
                default_hook(info);
                return;
            }
            let loc = info.location().map(|l| {
                let at = format!("{}:{}", l.file(), l.line());
                if is_ours(l.file()) {
                    at
                } else {
                    our_frame(&std::backtrace::Backtrace::force_capture().to_string()).unwrap_or(at)
                }
            });
            LOCATION.with(|l| *l.borrow_mut() = loc);
            if verbose {
                default_hook(info);
            }
        }));
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    r.map_err(|payload| {
        let loc = LOCATION.with(|l| l.borrow_mut().take());
        describe(payload_text(payload.as_ref()), loc.as_deref())
    })
}

/// [`run_guarded`] for work that returns a `Result`: a panic becomes one more error.
pub fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    run_guarded(f).unwrap_or_else(|msg| Err(anyhow::anyhow!(msg)))
}

/// A source path of this workspace (relative; dependencies' and the standard library's are
/// absolute: the cargo registry, `/rustc/...`).
fn is_ours(file: &str) -> bool {
    !std::path::Path::new(file).is_absolute()
}

/// The first frame of a backtrace in one of our crates (outside this module): `function (file:line)`
/// when the build has line tables, else the function.
fn our_frame(backtrace: &str) -> Option<String> {
    let lines: Vec<&str> = backtrace.lines().collect();
    lines.iter().enumerate().find_map(|(i, l)| {
        let (_, func) = l.trim().split_once(": ")?;
        let in_guard = [
            "modrl_model::guard::run_guarded",
            "modrl_model::guard::guarded",
        ]
        .iter()
        .any(|g| func.starts_with(g));
        if !func.starts_with("modrl_") || in_guard {
            return None;
        }
        let func = func.rsplit_once("::h").map_or(func, |(f, hash)| {
            if hash.chars().all(|c| c.is_ascii_hexdigit()) {
                f
            } else {
                func
            }
        });
        let at = lines
            .get(i + 1)
            .and_then(|n| n.trim().strip_prefix("at "))
            .map(|f| f.trim_start_matches("./"));
        Some(match at {
            Some(f) => format!("{func} ({f})"),
            None => func.to_string(),
        })
    })
}

/// The text a panic carried (`panic!` with a string or a formatted message).
fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// The one-line error shown for a panic.
fn describe(msg: &str, location: Option<&str>) -> String {
    // libtorch's messages are long (C++ frames after the first line): keep the first line. Behind
    // an `unwrap` the message is quoted (`Torch("...\nException raised from ...")`): keep the
    // quoted message up to its first escaped newline.
    let torch = msg.find("Torch(\"").map(|i| {
        let inner = &msg[i + 7..];
        let end = [inner.find("\\n"), inner.find('\n'), inner.find("\")")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(inner.len());
        &inner[..end]
    });
    let first = torch.unwrap_or_else(|| {
        msg.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(msg)
            .trim()
    });
    let cause = if torch.is_some() || msg.contains("libtorch") || msg.contains("TchError") {
        "libtorch rejected a tensor operation (shape, dtype, device or memory)"
    } else {
        "internal error (a bug in modrl; please report it with the command line)"
    };
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!("{cause}: {first}{at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_cause_and_place() {
        let e = run_guarded(|| -> u32 { panic!("index {} out of range", 7) }).unwrap_err();
        assert!(e.starts_with("internal error"), "{e}");
        assert!(e.contains("index 7 out of range"), "{e}");
        assert!(e.contains("guard.rs:"), "{e}");
        let e = run_guarded(|| -> u32 {
            panic!("called `Result::unwrap()` on an `Err` value: Torch(\"shape '[2, 3]' is invalid for input of size 5\nException raised from ...\")")
        })
        .unwrap_err();
        assert!(e.starts_with("libtorch rejected"), "{e}");
        assert!(
            e.contains(": shape '[2, 3]' is invalid for input of size 5 at "),
            "{e}"
        );
        assert!(!e.contains("Exception raised from"), "{e}");
        // As `unwrap` quotes it: newlines escaped.
        let e = describe(
            "called `Result::unwrap()` on an `Err` value: Torch(\"mat1 and mat2 shapes cannot be multiplied (4x64 and 32x64)\\nException raised from meta\")",
            Some("crates/model/src/llama.rs:40"),
        );
        assert_eq!(
            e,
            "libtorch rejected a tensor operation (shape, dtype, device or memory): mat1 and mat2 \
             shapes cannot be multiplied (4x64 and 32x64) at crates/model/src/llama.rs:40"
        );
        assert_eq!(run_guarded(|| 5), Ok(5));
        let e = guarded(|| -> anyhow::Result<()> { panic!("boom") }).unwrap_err();
        assert!(format!("{e}").starts_with("internal error"), "{e}");
        assert!(
            format!("{e}").contains(": boom at crates/model/src/guard.rs:"),
            "{e}"
        );
        assert_eq!(guarded(|| Ok(3)).unwrap(), 3);
    }

    #[test]
    fn a_real_libtorch_shape_error_is_caught() {
        let e = run_guarded(|| {
            let t = crate::Tensor::zeros([5], (crate::Kind::Float, crate::Device::Cpu));
            t.view([2, 3])
        })
        .unwrap_err();
        assert!(e.starts_with("libtorch rejected"), "{e}");
        assert!(e.contains("[2, 3]"), "{e}");
        assert!(!e.contains("Exception raised from"), "{e}");
        // The place is ours (this test), not tch's generated wrapper.
        assert!(!e.contains("tensor_generated"), "{e}");
        assert!(e.contains("modrl_model::guard::tests"), "{e}");
    }

    #[test]
    fn the_place_is_the_first_frame_of_ours() {
        let bt = "   0: std::backtrace::Backtrace::force_capture\n   1: modrl_model::guard::run_guarded::{{closure}}\n             at ./crates/model/src/guard.rs:30:5\n   2: tch::wrappers::tensor_generated::<impl tch::Tensor>::matmul\n             at /cargo/registry/src/tch-0.24.0/src/wrappers/tensor_generated.rs:11831:37\n   3: modrl_model::llama::Linear::forward::h0123456789abcdef\n             at ./crates/model/src/llama.rs:40:9\n";
        assert_eq!(
            our_frame(bt).as_deref(),
            Some("modrl_model::llama::Linear::forward (crates/model/src/llama.rs:40:9)")
        );
        assert_eq!(
            our_frame("   3: modrl_model::llama::Linear::forward\n").as_deref(),
            Some("modrl_model::llama::Linear::forward")
        );
        assert_eq!(our_frame("   0: std::rt::lang_start\n"), None);
    }
}
