//! Compiles `proto/streamgate/v1/*.proto` with protox (pure Rust, no protoc needed) and
//! generates the prost messages and tonic client/server code from the descriptors.
//! The encoded descriptor set is written too: the server serves it through reflection.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Neither protox nor tonic-prost-build tells cargo what to watch; without this a proto
    // edit would not trigger a rebuild.
    println!("cargo:rerun-if-changed=proto");

    let mut protos: Vec<PathBuf> = fs::read_dir("proto/streamgate/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    protos.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    protos.sort();

    let fds = protox::compile(&protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("streamgate_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".streamgate.v1")
        // Written by hand so that a server can send records it already encoded (see
        // src/record_batch.rs); the same message on the wire.
        .extern_path(
            ".streamgate.v1.RecordBatch",
            "crate::record_batch::RecordBatch",
        )
        .compile_fds(fds)?;
    Ok(())
}
