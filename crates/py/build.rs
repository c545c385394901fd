// The extension is installed as site-packages/modrl/_modrl.abi3.so; torch==2.11.0's libtorch is
// in site-packages/torch/lib. The rpath finds it there even before `import torch` (which the
// package's __init__ does first anyway, so both share one libtorch).
fn main() {
    println!("cargo:rustc-link-arg-cdylib=-Wl,-rpath,$ORIGIN/../torch/lib");
}
