//! hotrun: build, run, watch and swap a web app on every save.

fn main() {
    std::process::exit(hotrun::runtime::main(std::env::args_os().collect()))
}
