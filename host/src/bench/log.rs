//! `wasmtel bench log`: the durable log against the bare file system in the
//! same folder, in one run. Each side writes the same records (the log's
//! frames: header + CRC + payload) in the same batches; the log with group
//! commit (`fdatasync` per append), the baseline with `write` + `fdatasync`
//! of the same bytes per batch. Then the log is read back. Also with 4
//! concurrent writers, where the log's appenders share one `fdatasync`.

use std::io::Write;
use std::time::Instant;

use crate::log::{Item, Log, LogOptions};

/// Runs the benchmark and prints the figures.
pub fn run(records: usize, size: usize, batch: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("wasmtel-bench-log-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    println!(
        "bench log: {records} records of {size} bytes in appends of {batch}, fdatasync per append, in {}",
        dir.display()
    );
    let payload = vec![b'x'; size];
    let batches = records.div_ceil(batch);
    let options = LogOptions { max_bytes: u64::MAX / 2, max_events: u64::MAX / 2, ..LogOptions::default() };

    // The bare file system: the same frames, write + fdatasync per batch.
    let mut frames = Vec::new();
    for i in 0..batch {
        crate::log::segment::encode_record(i as u64, &payload, &mut frames);
    }
    let mut file = std::fs::File::create(dir.join("plain"))?;
    let start = Instant::now();
    for _ in 0..batches {
        file.write_all(&frames)?;
        file.sync_data()?;
    }
    let bare = (batches * batch) as f64 / start.elapsed().as_secs_f64();

    let (log, _) = Log::open(&dir.join("log"), options.clone())?;
    let refs: Vec<&[u8]> = (0..batch).map(|_| payload.as_slice()).collect();
    let start = Instant::now();
    for _ in 0..batches {
        log.append(&refs)?;
    }
    let append = (batches * batch) as f64 / start.elapsed().as_secs_f64();
    let mut reader = log.reader(0);
    let mut items = Vec::new();
    let mut read = 0usize;
    let start = Instant::now();
    loop {
        items.clear();
        if reader.read(4096, 16 << 20, &mut items)? == 0 {
            break;
        }
        read += items.iter().filter(|i| matches!(i, Item::Record { .. })).count();
    }
    let read_rate = read as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(read == batches * batch, "read back {read} of {}", batches * batch);
    println!("  write + fdatasync (baseline)   {bare:>10.0} records/s");
    println!("  log append (group commit)      {append:>10.0} records/s  ({:.2}x the baseline)", append / bare);
    println!("  log read back                  {read_rate:>10.0} records/s");

    // Four writers: the baseline serializes its syncs; the log shares them.
    let writers = 4;
    let file = std::sync::Mutex::new(std::fs::File::create(dir.join("plain4"))?);
    let bare4 = concurrently(writers, batches / writers * batch, || -> anyhow::Result<()> {
        for _ in 0..batches / writers {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(&frames)?;
            f.sync_data()?;
        }
        Ok(())
    })?;
    let (log4, _) = Log::open(&dir.join("log4"), options)?;
    let append4 = concurrently(writers, batches / writers * batch, || -> anyhow::Result<()> {
        for _ in 0..batches / writers {
            log4.append(&refs)?;
        }
        Ok(())
    })?;
    println!("  {writers} writers, write + fdatasync  {bare4:>10.0} records/s");
    println!(
        "  {writers} writers, log append         {append4:>10.0} records/s  ({:.2}x the baseline)",
        append4 / bare4
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Runs `work` on `writers` threads at once; records/s for `each` records
/// per thread.
fn concurrently(writers: usize, each: usize, work: impl Fn() -> anyhow::Result<()> + Sync) -> anyhow::Result<f64> {
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..writers).map(|_| s.spawn(&work)).collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    Ok((writers * each) as f64 / start.elapsed().as_secs_f64())
}
