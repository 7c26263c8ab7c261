//! How the process allocator treats the pipeline's large, short-lived buffers.

/// Keep freed large buffers (decoded frames, libjpeg-turbo's coefficient arrays) in the heap for
/// the next render instead of handing them back to the kernel.
///
/// glibc otherwise maps and unmaps every large buffer, and each render page-faulted its frames
/// in again (a quarter of a render); and one malloc arena, so the encoder's threads reuse what
/// the decoder freed (docs/decisions/pipeline.md, "Large buffers kept").
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
