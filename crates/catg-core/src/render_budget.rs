//! How many renders run at once in one process: as many as fit a memory budget, by each
//! render's estimated peak ([`catg_image::memory_estimate`]), rather than a fixed count, so ten
//! thumbnails can run side by side while a 100 MP source waits for the room it needs.

use tokio::sync::{Semaphore, SemaphorePermit};

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

    /// Wait until `bytes` fit, and hold them until the returned permit is dropped. A render
    /// larger than the whole budget still runs, alone (it was admitted by the image limits;
    /// refusing it here would make it unrenderable forever).
    pub async fn reserve(&self, bytes: u64) -> SemaphorePermit<'_> {
        let mib = bytes.div_ceil(1 << 20).clamp(1, u64::from(self.total_mib)) as u32;
        self.permits.acquire_many(mib).await.expect("the budget's semaphore is never closed")
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
    async fn renders_wait_for_room_and_an_oversized_one_runs_alone() {
        let budget = RenderBudget::new(100);
        let first = budget.reserve(60 << 20).await;
        assert_eq!(budget.available_mib(), 40);
        // 50 MiB does not fit beside 60: it waits until the first is released.
        let blocked = tokio::time::timeout(Duration::from_millis(50), budget.reserve(50 << 20)).await;
        assert!(blocked.is_err(), "admitted past the budget");
        let small = budget.reserve(40 << 20).await;
        assert_eq!(budget.available_mib(), 0);
        drop((first, small));
        // Larger than the whole budget: takes all of it, once everything else is done.
        let huge = budget.reserve(10 << 30).await;
        assert_eq!(budget.available_mib(), 0);
        drop(huge);
        assert_eq!(budget.available_mib(), 100);
        // Rounded up to whole MiB, at least one.
        let tiny = budget.reserve(1).await;
        assert_eq!(budget.available_mib(), 99);
        drop(tiny);
    }
}
