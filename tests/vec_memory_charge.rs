//! The decoder's memory charge against what it really allocates: a
//! counting global allocator records the peak heap of one `decode`; the
//! same entity must be refused with any `max_decoded_bytes` below that peak
//! (the charge never under-counts) and decode within 3× of it (the charge
//! is not so coarse that it refuses honest entities).
//!
//! One test only: the allocator counts every thread of the binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use versile::vec::netbytes::{encode_posint, encode_posint_u64};
use versile::vec::{Decoder, DecoderConfig, StrCodec, VecError};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn config(max: usize) -> DecoderConfig {
    DecoderConfig {
        max_decoded_bytes: max,
        str_decoding: Some(StrCodec::Utf8),
        ..DecoderConfig::default()
    }
}

/// Peak heap growth while decoding `bytes` without a memory limit.
fn peak_of_decode(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut d = Decoder::new(config(usize::MAX));
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let e = d.decode(&mut buf).expect("valid").expect("complete");
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop(e);
    peak
}

fn decodes_within(bytes: &[u8], max: usize) -> Result<bool, VecError> {
    let mut buf = BytesMut::from(bytes);
    Decoder::new(config(max))
        .decode(&mut buf)
        .map(|e| e.is_some())
}

fn tuple_header(n: usize, out: &mut Vec<u8>) {
    out.push(0xF6);
    encode_posint_u64(n as u64, out);
}

#[test]
fn charge_covers_real_allocations() {
    let mut shapes: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut flat = Vec::new();
    tuple_header(100_000, &mut flat);
    flat.resize(flat.len() + 100_000, 0x01);
    shapes.push(("flat tiny ints", flat));
    let mut nested = Vec::new();
    tuple_header(300, &mut nested);
    for _ in 0..300 {
        tuple_header(300, &mut nested);
        nested.resize(nested.len() + 300, 0x01);
    }
    shapes.push(("nested tiny ints", nested));
    let mut tagged = Vec::new();
    for _ in 0..200 {
        tagged.extend_from_slice(&[0xFE, 0x02]);
        tagged.push(0x05);
    }
    tagged.push(0x01);
    shapes.push(("tagged chain", tagged));
    let mut bigs = Vec::new();
    tuple_header(1000, &mut bigs);
    for i in 0..1000u32 {
        bigs.push(0xEF);
        let mut mag = vec![0x33; 200];
        mag[0] = (i % 200) as u8 + 1;
        encode_posint(&num_bigint::BigUint::from_bytes_be(&mag), &mut bigs);
    }
    shapes.push(("big integers", bigs));
    let mut strings = Vec::new();
    tuple_header(2000, &mut strings);
    for _ in 0..2000 {
        strings.push(0xF4);
        encode_posint_u64(100, &mut strings);
    }
    strings.extend(std::iter::repeat_n(b'a', 2000 * 100));
    shapes.push(("strings", strings));
    let mut floats = Vec::new();
    tuple_header(5000, &mut floats);
    for _ in 0..5000 {
        // FB: digits, base 3, exponent (a VFloat, boxed in the node list).
        floats.extend_from_slice(&[0xFB, 0x07, 0x06, 0x09]);
    }
    shapes.push(("vfloats", floats));

    for (name, bytes) in &shapes {
        let peak = peak_of_decode(bytes);
        assert!(peak > 0, "{name}");
        match decodes_within(bytes, peak - 1) {
            Err(VecError::DecodedTooLarge { .. }) => {}
            other => panic!(
                "{name}: allocated {peak} bytes, yet a limit of {} gave {other:?}",
                peak - 1
            ),
        }
        assert_eq!(
            decodes_within(bytes, peak * 3),
            Ok(true),
            "{name}: refused within 3× its {peak} bytes"
        );
    }
}
