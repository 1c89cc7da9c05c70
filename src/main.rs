//! The binary: the command line natively, the web app in the browser.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // burn restores an optimiser's saved state on its default device, which would
        // otherwise be a GPU that may not exist; the CPU always does. Set before any
        // thread starts.
        // SAFETY: nothing else runs yet, so no thread reads the environment meanwhile.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {
    replab::ui::mount();
}
