//! Compiles the `.proto` files with `protox` (pure Rust, so no system `protoc` is needed) and
//! generates prost messages plus tonic clients and servers from the resulting descriptors.

use std::error::Error;

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &[
    "basin/control/v1/control.proto",
    "basin/executor/v1/executor.proto",
    "basin/shard/v1/shard.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{proto}");
    }
    let descriptors = protox::compile(PROTOS, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
