//! One JSONL line through the record parser (with and without the BOM
//! strip, with `--set` and renamed text/id fields), and every accepted
//! record through the block encoder and decoder: key and text come back.
#![no_main]

use corpusql::raw::ingest::record::{parse_line, Parsed, RecordOptions};
use corpusql::raw::segment::block::{encode, Block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let renamed = RecordOptions {
        text_field: Some("body".into()),
        id_field: Some("key".into()),
        set: vec![
            ("license".into(), "pd".into()),
            ("lang".into(), "fr".into()),
        ],
    };
    for (first, opts) in [(true, RecordOptions::default()), (false, renamed)] {
        if let Parsed::Doc(d) = parse_line(data, first, &opts) {
            let mut raw = Vec::new();
            encode(std::slice::from_ref(&*d), &mut raw);
            let b = Block::decode(raw).expect("a parsed record encodes to a valid block");
            assert_eq!(b.len(), 1);
            assert_eq!(b.key(0), d.key);
            b.check_text().expect("text is UTF-8");
            let mut json = Vec::new();
            b.write_json(0, &mut json);
            serde_json::from_slice::<serde_json::Value>(&json)
                .expect("a stored record writes back as JSON");
        }
    }
});
