//! A tag sidecar of arbitrary bytes (checksums fixed up) opened by the
//! reader: header, tagged set, every column the meta lists plus one it
//! lacks, and `verify`.
#![no_main]

use corpusql::raw::schema::FieldKind;
use corpusql::raw::segment::sidecar::{Column, Sidecar, SidecarMeta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = corpusql_fuzz::fix_sidecar_crcs(data.to_vec());
    // The column list comes from the catalog; take it from the file's own
    // meta when that decodes, so that the columns are actually read.
    let mut names: Vec<(String, FieldKind)> = vec![
        ("score".into(), FieldKind::Number),
        ("label".into(), FieldKind::Facet),
        ("flag".into(), FieldKind::Bool),
    ];
    if let Some((start, end)) = corpusql_fuzz::sidecar_meta_span(&bytes) {
        if let Ok(m) = postcard::from_bytes::<SidecarMeta>(&bytes[start..end]) {
            names = m.columns.iter().map(|c| (c.name.clone(), c.kind)).collect();
            names.push(("absent".into(), FieldKind::Number));
        }
    }
    let path = corpusql_fuzz::write_scratch("seg-0000000001.tag-fuzz-1.cqt", &bytes);
    let Ok(s) = Sidecar::open(&path, names) else {
        return;
    };
    if s.meta().is_err() {
        return;
    }
    let _ = s.tagged();
    for i in 0..s.columns().len() {
        match s.column(i).as_deref() {
            Ok(Column::Number(v, present)) => {
                assert!(present.len() <= v.len() as u64);
            }
            Ok(Column::Facet(vals, present)) => {
                let _ = (vals.len(), present.len());
            }
            Err(_) => {}
        }
    }
    let _ = s.verify();
});
