//! storage-server: the composition root. It is the only crate that names concrete adapters.

fn main() {
    eprintln!("storage-server: not wired yet");
    std::process::exit(2);
}
