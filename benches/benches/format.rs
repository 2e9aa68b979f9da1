//! Criterion benches of the archive format (no CPython): open, lookup,
//! per-module fix-up and dump throughput, with the archive size on the x-axis.
//!
//! The archives are synthetic but shaped like real ones: modules of
//! `MODULE_BYTES` of objects (a quarter hot, the rest cold), 16-aligned
//! objects of 48 bytes on average, each with an `ob_type` Symbol relocation
//! plus one pointer to another object of its module, every eighth an
//! interned str, one CodeInit per 16 objects. `benches/run.py` prints the
//! same densities for a real stdlib archive (docs/PERFORMANCE.md compares
//! them). Sizes come from CDS_BENCH_SIZES_MB (default "1,10,100").

use cds_core::format::{apply_relocations, Archive, ArchiveBuilder, Expectations, Fixups, ModuleMeta, Region, Target};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;

const MODULE_BYTES: usize = 24 * 1024;
const EXPECT: Expectations = Expectations { python_hexversion: 0x030b_02f0, build_id: [7; 16] };

fn sizes_mb() -> Vec<usize> {
    std::env::var("CDS_BENCH_SIZES_MB")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn module_name(i: usize) -> String {
    format!("pkg{:03}.mod{:06}", i % 97, i)
}

/// Builds an archive of about `mb` MiB.
fn build(mb: usize) -> Vec<u8> {
    let modules = (mb * 1024 * 1024 / MODULE_BYTES).max(1);
    let mut b = ArchiveBuilder::new();
    for i in 0..modules {
        let meta = ModuleMeta {
            name: module_name(i),
            origin: format!("/usr/lib/python3.11/site-packages/pkg{:03}/mod{:06}.py", i % 97, i),
            is_package: false,
            source_mtime_ns: 1_700_000_000_000_000_000,
            source_size: 12345,
            source_hash: 0,
            source_dev: 0,
            source_ino: 0,
            source_realpath: String::new(),
        };
        let mut m = b.module(meta).expect("unique names");
        let mut objs = Vec::new();
        let mut used = 0;
        let mut k = 0usize;
        while used < MODULE_BYTES {
            let region = if k % 4 == 0 { Region::Hot } else { Region::Cold };
            let size = 32 + (k * 16) % 48; // 32, 48, 64
            let at = m.alloc(region, size);
            let bytes = m.bytes_mut(at, size);
            bytes[0] = 1; // refcount
            for (j, byte) in bytes.iter_mut().enumerate().skip(16) {
                *byte = (k + j) as u8;
            }
            m.reloc(at.add(8), Target::Symbol(16 + (k % 7) as u32));
            if let Some(&prev) = objs.last() {
                let target = if k % 8 == 0 { Target::InternedStr(prev) } else { Target::Object(prev) };
                m.reloc(at.add(16), target);
            }
            if region == Region::Hot && k % 16 == 0 {
                m.reloc(at, Target::CodeInit);
            }
            objs.push(at);
            used += size.div_ceil(16) * 16;
            k += 1;
        }
        let code = objs[0];
        m.finish(code);
    }
    b.finish(EXPECT.python_hexversion, EXPECT.build_id).expect("fits")
}

struct FakeFixups {
    ty: Box<[u64; 8]>,
}

impl Fixups for FakeFixups {
    fn symbol(&mut self, id: u32) -> Option<usize> {
        Some(self.ty.as_ptr() as usize + (id as usize % 8) * 8)
    }
    unsafe fn intern(&mut self, string: usize) -> Result<usize, String> {
        Ok(black_box(string))
    }
    unsafe fn frozenset(&mut self, tuple: usize) -> Result<usize, String> {
        Ok(tuple)
    }
}

fn archives() -> Vec<(usize, Vec<u8>)> {
    sizes_mb().into_iter().map(|mb| (mb, build(mb))).collect()
}

fn benches(c: &mut Criterion) {
    let archives = archives();
    let dir = std::env::temp_dir().join(format!("cds-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Open: header + table validation, from memory and from a fresh mmap.
    let mut g = c.benchmark_group("open");
    for (mb, bytes) in &archives {
        g.bench_with_input(BenchmarkId::new("parse", mb), bytes, |b, bytes| {
            b.iter(|| Archive::parse(black_box(bytes), &EXPECT).unwrap())
        });
        let path = dir.join(format!("{mb}.img"));
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        g.bench_with_input(BenchmarkId::new("mmap+parse", mb), &path, |b, path| {
            b.iter(|| {
                let f = std::fs::File::open(path).unwrap();
                // SAFETY: the file is ours and not modified while mapped.
                let map = unsafe { memmap2::MmapOptions::new().map_copy(&f) }.unwrap();
                let a = Archive::parse(&map, &EXPECT).unwrap();
                black_box((a.module_count(), map.len()))
            })
        });
    }
    g.finish();

    // Lookup: binary search of the sorted table + validation of the entry.
    let mut g = c.benchmark_group("lookup");
    for (mb, bytes) in &archives {
        let a = Archive::parse(bytes, &EXPECT).unwrap();
        let names: Vec<String> = (0..64).map(|i| module_name(i * 7919 % a.module_count())).collect();
        g.throughput(Throughput::Elements(names.len() as u64));
        g.bench_with_input(BenchmarkId::new("find+module", mb), bytes, |b, bytes| {
            b.iter(|| {
                for n in &names {
                    let i = a.find(bytes, n).unwrap();
                    black_box(a.module(bytes, i).unwrap());
                }
            })
        });
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("find-missing", mb), bytes, |b, bytes| {
            b.iter(|| black_box(a.find(bytes, "zzz.not.archived")))
        });
    }
    g.finish();

    // Per-module fix-up of one module: checksum, then every relocation.
    let mut g = c.benchmark_group("fixup");
    for (mb, bytes) in &archives {
        let a = Archive::parse(bytes, &EXPECT).unwrap();
        let i = a.find(bytes, &module_name(a.module_count() / 2)).unwrap();
        let m = a.module(bytes, i).unwrap();
        let span = (m.hot.len() + m.cold.len()) as u64;
        g.throughput(Throughput::Bytes(span));
        g.bench_with_input(BenchmarkId::new("verify", mb), bytes, |b, bytes| b.iter(|| m.verify(bytes).unwrap()));
        let mut copy = bytes.clone();
        let mut fx = FakeFixups { ty: Box::new([0; 8]) };
        // Relocation is idempotent (records live outside the spans), so the
        // same copy can be relocated again and again.
        g.bench_function(BenchmarkId::new("relocate", mb), |b| {
            b.iter(|| apply_relocations(&mut copy, &m, &mut fx).unwrap())
        });
    }
    g.finish();

    // Dump: laying out and writing the whole archive (ArchiveBuilder + finish).
    let mut g = c.benchmark_group("dump");
    g.sample_size(10);
    for (mb, bytes) in &archives {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::new("build", mb), mb, |b, &mb| b.iter(|| black_box(build(mb).len())));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(format, benches);
criterion_main!(format);
