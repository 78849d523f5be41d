//! The `rotor` binary: parse the command line and hand over to [`rotor::cli`].

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    rotor::cli::main()
}
