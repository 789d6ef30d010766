//! Token-file export: Megatron-LM indexed datasets (`.bin`/`.idx`) and
//! nanotron/datatrove token files (`.ds`, `.ds.index`, `.ds.metadata`),
//! each with a provenance sidecar.
