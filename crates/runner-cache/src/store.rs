//! Where the cache is kept: the stack's S3 bucket ([`S3Store`]) or memory ([`MemoryStore`]).
//!
//! Packages go up as uploads that are completed only once the caller has checked them, so an
//! unchecked package never becomes visible.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use tracing::warn;

use crate::CacheError;

/// S3 multipart parts: 8 MiB, above S3's 5 MiB minimum. What one open upload holds in memory
/// at most.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// One object being written: chunks in, then [`Upload::complete`] or [`Upload::abort`].
#[async_trait]
pub trait Upload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), CacheError>;
    /// Makes the object visible.
    async fn complete(self: Box<Self>) -> Result<(), CacheError>;
    /// Drops what was written; the key keeps what it had.
    async fn abort(self: Box<Self>) -> Result<(), CacheError>;
}

/// The cache's objects.
#[async_trait]
pub trait CacheStore: Send + Sync + fmt::Debug {
    /// A small object (the manifest) whole; `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// Writes a small object whole.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), CacheError>;
    /// Starts writing a large object.
    async fn upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, CacheError>;
}

/// A bucket. Versioning (the stack's bucket has it) keeps what an update replaces.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket (versioned) when it does not exist: for `runway local`, where the
    /// stack's template is not there to make it.
    pub async fn ensure_bucket(&self) -> Result<(), CacheError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|error| self.error("CreateBucket", "", error))?;
        self.client
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| self.error("PutBucketVersioning", "", error))?;
        Ok(())
    }

    fn error<E>(&self, operation: &'static str, key: &str, error: SdkError<E>) -> CacheError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        store_error(operation, &self.bucket, key, error)
    }
}

fn store_error<E>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    error: SdkError<E>,
) -> CacheError
where
    E: std::error::Error + Send + Sync + 'static,
{
    CacheError::Store {
        operation,
        bucket: bucket.to_string(),
        key: key.to_string(),
        reason: DisplayErrorContext(&error).to_string(),
    }
}

#[async_trait]
impl CacheStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(self.error("GetObject", key, error)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| CacheError::Store {
                operation: "GetObject",
                bucket: self.bucket.clone(),
                key: key.to_string(),
                reason: error.to_string(),
            })?;
        Ok(Some(bytes.to_vec()))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), CacheError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(|error| self.error("PutObject", key, error))?;
        Ok(())
    }

    async fn upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, CacheError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|error| self.error("CreateMultipartUpload", key, error))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| CacheError::Store {
                operation: "CreateMultipartUpload",
                bucket: self.bucket.clone(),
                key: key.to_string(),
                reason: "no upload id in the answer".to_string(),
            })?
            .to_string();
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id,
            pending: Vec::new(),
            parts: Vec::new(),
        }))
    }
}

/// A multipart upload: full parts go up as they fill, the last one at completion.
struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    pending: Vec<u8>,
    parts: Vec<CompletedPart>,
}

impl S3Upload {
    async fn send_part(&mut self, body: Vec<u8>) -> Result<(), CacheError> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(|error| store_error("UploadPart", &self.bucket, &self.key, error))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), CacheError> {
        self.pending.extend_from_slice(&chunk);
        while self.pending.len() >= PART_BYTES {
            let rest = self.pending.split_off(PART_BYTES);
            let part = std::mem::replace(&mut self.pending, rest);
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<(), CacheError> {
        if !self.pending.is_empty() || self.parts.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.send_part(last).await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                store_error("CompleteMultipartUpload", &self.bucket, &self.key, error)
            })?;
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), CacheError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|error| store_error("AbortMultipartUpload", &self.bucket, &self.key, error))?;
        Ok(())
    }
}

/// Objects in memory, for tests and `runway local` without S3.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Every key held, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.object(key))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), CacheError> {
        self.lock().insert(key.to_string(), bytes);
        Ok(())
    }

    async fn upload(&self, key: &str, _content_type: &str) -> Result<Box<dyn Upload>, CacheError> {
        Ok(Box::new(MemoryUpload {
            store: self.clone(),
            key: key.to_string(),
            bytes: Vec::new(),
        }))
    }
}

struct MemoryUpload {
    store: MemoryStore,
    key: String,
    bytes: Vec<u8>,
}

#[async_trait]
impl Upload for MemoryUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), CacheError> {
        self.bytes.extend_from_slice(&chunk);
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<(), CacheError> {
        self.store.lock().insert(self.key, self.bytes);
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), CacheError> {
        Ok(())
    }
}

/// Aborts `uploads`, logging (not returning) failures: the caller already has the error that
/// made it give up, and an upload left open is removed by the bucket's lifecycle rule.
pub(crate) async fn abort_all(uploads: Vec<(String, Box<dyn Upload>)>) {
    for (key, upload) in uploads {
        if let Err(error) = upload.abort().await {
            warn!(%key, %error, "could not abort an upload; the bucket's lifecycle rule removes it");
        }
    }
}
