//! How many decodes run at once in one process: as many as fit a memory budget, by each one's
//! estimated peak ([`catg_image::memory_estimate`] for renders,
//! [`catg_image::verify_memory_estimate`] for ingest's check), rather than a fixed count, so ten
//! thumbnails can run side by side while a 100 MP source waits for the room it needs. Every
//! decode in a process (renders, ingest on upload, on demand, in backfill and reconcile) goes
//! through the one budget.

use catg_image::{ImageError, Limits};
use std::sync::Arc;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How decodes are bounded in one process: the image limits, and the memory budget they all
/// share. Ingest, backfill and reconcile take this rather than bare limits, so none of them can
/// decode outside the budget.
#[derive(Debug, Clone)]
pub struct Decoding {
    pub limits: Limits,
    pub budget: Arc<RenderBudget>,
}

impl Decoding {
    pub fn new(limits: Limits, budget: Arc<RenderBudget>) -> Decoding {
        Decoding { limits, budget }
    }
}

/// Admits renders against a budget of `total_mib` MiB.
#[derive(Debug)]
pub struct RenderBudget {
    permits: Semaphore,
    total_mib: u32,
}

impl RenderBudget {
    pub fn new(total_mib: u32) -> RenderBudget {
        let total_mib = total_mib.max(1);
        RenderBudget { permits: Semaphore::new(total_mib as usize), total_mib }
    }

    pub fn total_mib(&self) -> u32 {
        self.total_mib
    }

    /// Wait until `bytes` fit, and hold them until the returned permit is dropped. A decode
    /// larger than the whole budget is refused (`ResourceLimit`): running it would overrun the
    /// budget, whatever else waits.
    pub async fn reserve(&self, bytes: u64) -> Result<SemaphorePermit<'_>, ImageError> {
        let mib = self.admit(bytes)?;
        Ok(self.permits.acquire_many(mib).await.expect("the budget's semaphore is never closed"))
    }

    /// Whether a decode of `bytes` could ever run within the budget: its size in whole MiB, or
    /// the refusal. For one-shot processes (`catg render`) that run one decode and never wait.
    pub fn admit(&self, bytes: u64) -> Result<u32, ImageError> {
        let mib = bytes.div_ceil(1 << 20).max(1);
        if mib > u64::from(self.total_mib) {
            return Err(ImageError::ResourceLimit(format!(
                "this image needs about {mib} MiB to process, more than the memory budget of {} MiB",
                self.total_mib
            )));
        }
        Ok(mib as u32)
    }

    /// MiB not reserved right now.
    pub fn available_mib(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn decodes_wait_for_room_and_an_oversized_one_is_refused() {
        let budget = RenderBudget::new(100);
        let first = budget.reserve(60 << 20).await.expect("fits");
        assert_eq!(budget.available_mib(), 40);
        // 50 MiB does not fit beside 60: it waits until the first is released.
        let blocked = tokio::time::timeout(Duration::from_millis(50), budget.reserve(50 << 20)).await;
        assert!(blocked.is_err(), "admitted past the budget");
        let small = budget.reserve(40 << 20).await.expect("fits");
        assert_eq!(budget.available_mib(), 0);
        drop((first, small));
        // Larger than the whole budget: refused at once, nothing held.
        let huge = budget.reserve((100 << 20) + 1).await.expect_err("over the budget");
        assert_eq!(huge.reject_kind(), Some(catg_image::RejectKind::ResourceLimit));
        assert_eq!(budget.available_mib(), 100);
        let all = budget.reserve(100 << 20).await.expect("exactly the budget");
        drop(all);
        // Rounded up to whole MiB, at least one.
        let tiny = budget.reserve(1).await.expect("fits");
        assert_eq!(budget.available_mib(), 99);
        drop(tiny);
    }
}
