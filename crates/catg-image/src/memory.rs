//! How the process allocator treats the pipeline's large, short-lived buffers.

/// Keep freed large buffers (decoded frames, libjpeg-turbo's coefficient arrays) in the heap for
/// the next render instead of handing them back to the kernel.
///
/// By default glibc serves every allocation over its mmap threshold (at most 32 MiB) with a
/// fresh `mmap` and returns it with `munmap` on free, so each render page-faults its frames in
/// again: measured with `catg-bench` on a 10 MP progressive JPEG, that was 25-30% of a 1200 px
/// render (105 → 74 ms) and 25% of a 400 px WebP (82 → 62 ms). Raising the thresholds makes
/// renders reuse memory; the process then holds on to about one render's peak per thread (the
/// peak itself does not grow), which the render concurrency limit already budgets for.
///
/// It also keeps all threads on one malloc arena. With one arena per thread, the AVIF encoder
/// (on rayon's threads) and the decoder (on the caller's) each kept their own high-water mark,
/// and the process held the sum: a 400 px AVIF from a 2 MP photo, 4 renders in a row, peaked at
/// 21.9 MB with per-thread arenas and 17.7 MB with one. Small allocations still come from each
/// thread's own cache (tcache), so one arena costs renders no measurable time.
///
/// Call once, first thing in `main` of a process that renders. A no-op on other C libraries.
pub fn reuse_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tunables; it is called before any thread starts.
    unsafe {
        const LIMIT: libc::c_int = 512 << 20;
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
