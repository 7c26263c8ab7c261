#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| catg_fuzz::jpeg_refine(data));
