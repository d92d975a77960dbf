//! Compiles the one C helper: INCRBYFLOAT's `long double` arithmetic (see
//! `src/command/ldfloat.c`), so results match Redis's digit for digit.

fn main() {
    println!("cargo:rerun-if-changed=src/command/ldfloat.c");
    cc::Build::new()
        .file("src/command/ldfloat.c")
        .warnings(true)
        .compile("shardcache_ldfloat");
}
