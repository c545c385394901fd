//! The CLI's error policy for panics. Model code calls libtorch through `tch`, whose tensor
//! operations panic on a shape, dtype or device error; so can a bug of ours. A panic must not reach
//! the user as a Rust backtrace: the command runs under `catch_unwind`, the panic hook keeps the
//! message and where it happened (printed with a backtrace only when `RUST_BACKTRACE` is set), and
//! `main` prints one `error:` line naming the cause and exits with status 101, like a failed command
//! but distinguishable from one. Everything a command has already written stays (outputs are
//! written atomically or appended row by row, and runs and batch jobs resume).

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Where the last panic of this thread happened (`file:line`), set by the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Exit status of a command that panicked (Rust's own status for an uncaught panic).
pub const PANIC_EXIT: i32 = 101;

/// Run `f`; a panic becomes `Err(message)` instead of unwinding further.
pub fn run_guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let loc = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            LOCATION.with(|l| *l.borrow_mut() = loc);
            if verbose {
                default_hook(info);
            }
        }));
    });
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let loc = LOCATION.with(|l| l.borrow_mut().take());
        describe(payload_text(payload.as_ref()), loc.as_deref())
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
    // libtorch's messages are long (C++ frames after the first line): keep the first line.
    let first = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(msg)
        .trim();
    let cause = if msg.contains("Torch(") || msg.contains("libtorch") || msg.contains("TchError") {
        "libtorch rejected a tensor operation (shape, dtype, device or memory)"
    } else {
        "internal error (a bug in modrl; please report it with the command line)"
    };
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "{cause}: {first}{at}. Files already written are kept (train --resume and classify continue \
         where they stopped); set RUST_BACKTRACE=1 for a backtrace"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_cause_and_place() {
        let e = run_guarded(|| -> u32 { panic!("index {} out of range", 7) }).unwrap_err();
        assert!(e.starts_with("internal error"), "{e}");
        assert!(e.contains("index 7 out of range"), "{e}");
        assert!(e.contains("panics.rs:"), "{e}");
        let e = run_guarded(|| -> u32 {
            panic!("called `Result::unwrap()` on an `Err` value: Torch(\"shape '[2, 3]' is invalid for input of size 5\nException raised from ...\")")
        })
        .unwrap_err();
        assert!(e.starts_with("libtorch rejected"), "{e}");
        assert!(e.contains("shape '[2, 3]' is invalid"), "{e}");
        assert!(!e.contains("Exception raised from"), "{e}");
        assert_eq!(run_guarded(|| 5), Ok(5));
    }

    #[test]
    fn a_real_libtorch_shape_error_is_caught() {
        let e = run_guarded(|| {
            let t = modrl_model::Tensor::zeros(
                [5],
                (modrl_model::Kind::Float, modrl_model::Device::Cpu),
            );
            t.view([2, 3])
        })
        .unwrap_err();
        assert!(e.starts_with("libtorch rejected"), "{e}");
        assert!(e.contains("[2, 3]"), "{e}");
    }
}
