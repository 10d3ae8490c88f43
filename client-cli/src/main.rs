//! The `streamgate` binary: the command line of [`streamgate_cli`], which has it all (the
//! integration tests build this same file as a binary of their own crate).

fn main() -> std::process::ExitCode {
    streamgate_cli::run()
}
