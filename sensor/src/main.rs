//! The `sensor` binary: command line -> subcommand.

fn main() {
    println!("sensor");
}
