//! SQS as the job queue. On AWS, SQS invokes the transform Lambda; the leased-receive side is
//! implemented too, so the conformance suite (and a long-running worker) can use it.
//! Deduplication is the manifest's claim, not SQS's: a standard queue is enough.

use crate::errors::map;
use async_trait::async_trait;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use catg_core::model::Job;
use catg_core::ports::{Delivery, JobQueue, LeasedJobQueue, StoreResult};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsQueue {
        SqsQueue { client, queue_url: queue_url.into() }
    }
}

/// SQS counts visibility in whole seconds.
fn seconds(ms: u64) -> i32 {
    ms.div_ceil(1000).min(43_200) as i32
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, job: &Job) -> StoreResult<()> {
        let body = job.to_json();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| map("sqs send", e))?;
        Ok(())
    }

    async fn pending_jobs(&self) -> StoreResult<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| map("sqs get queue attributes", e))?;
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: &Name| attributes.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(count(&Name::ApproximateNumberOfMessages) + count(&Name::ApproximateNumberOfMessagesNotVisible))
    }
}

#[async_trait]
impl LeasedJobQueue for SqsQueue {
    async fn receive(&self, lease_ms: u64) -> StoreResult<Option<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            .visibility_timeout(seconds(lease_ms))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| map("sqs receive", e))?;
        let Some(message) = out.messages.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let handle = message.receipt_handle().unwrap_or_default().to_string();
        let attempt = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        match Job::from_json(message.body().unwrap_or_default()) {
            Ok(job) => Ok(Some(Delivery { id: handle, job, attempt })),
            Err(e) => {
                tracing::error!(error = %e, "dropping an unreadable job message");
                self.ack(&handle).await?;
                Ok(None)
            }
        }
    }

    async fn ack(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(id)
            .send()
            .await
            .map_err(|e| map("sqs delete", e))?;
        Ok(())
    }

    async fn retry_later(&self, id: &str, delay_ms: u64) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(id)
            .visibility_timeout(seconds(delay_ms))
            .send()
            .await
            .map_err(|e| map("sqs change visibility", e))?;
        Ok(())
    }
}
