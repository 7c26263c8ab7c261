//! S3 as an object store. `put_if_absent` is a conditional PUT (`If-None-Match: *`).

use crate::errors::map;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use catg_core::model::Millis;
use catg_core::ports::{ObjectMeta, ObjectReader, ObjectStore, PutOutcome, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ObjectStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3ObjectStore {
        S3ObjectStore { client, bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

fn etag(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_string()
}

fn millis(time: Option<&aws_sdk_s3::primitives::DateTime>) -> Millis {
    time.and_then(|t| t.to_millis().ok()).map_or(0, |ms| ms.max(0) as Millis)
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn get(&self, key: &str, max_bytes: u64) -> StoreResult<Vec<u8>> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| map("s3 get", e))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(StoreError::Invalid(format!("{key} is {size} bytes, over {max_bytes}")));
        }
        let bytes = out.body.collect().await.map_err(|e| StoreError::Unavailable(format!("s3 get body: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn open(&self, key: &str) -> StoreResult<(ObjectMeta, ObjectReader)> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| map("s3 get", e))?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: etag(out.e_tag()),
            modified_ms: millis(out.last_modified()),
        };
        Ok((meta, Box::new(out.body.into_async_read())))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: etag(out.e_tag()),
                modified_ms: millis(out.last_modified()),
            })),
            Err(e) => match map("s3 head", e) {
                StoreError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        cache_control: &str,
    ) -> StoreResult<PutOutcome> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type(content_type)
            .cache_control(cache_control)
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => match map("s3 put", e) {
                // 412: the key exists. 409: a concurrent conditional write won the race.
                StoreError::Conflict(_) => Ok(PutOutcome::AlreadyExists),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<ObjectMeta>> {
        let mut request =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).max_keys(limit.min(1000) as i32);
        if let Some(after) = after {
            request = request.start_after(after);
        }
        let out = request.send().await.map_err(|e| map("s3 list", e))?;
        Ok(out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ObjectMeta {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: etag(o.e_tag()),
                    modified_ms: millis(o.last_modified()),
                })
            })
            .take(limit)
            .collect())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| map("s3 delete", e))?;
        Ok(())
    }
}
