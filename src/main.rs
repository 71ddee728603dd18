use std::process::ExitCode;

fn main() -> ExitCode {
    consulta::cli::main()
}
