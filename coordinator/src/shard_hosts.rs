//! Streaming-table shards on executors, as the catalog reaches them: [`ShardHosts`] over the
//! cluster membership (which executor serves which node now) and each executor's
//! `basin.shard.v1.ShardService`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::Schema;
use basin_catalog::ipc;
use basin_catalog::streams::{RemoteAck, RemoteBatch, RemoteError, ShardHosts, ShardRef};
use basin_proto::MAX_SHARD_MESSAGE_BYTES;
use basin_proto::shard::v1 as pb;
use basin_proto::shard::v1::shard_service_client::ShardServiceClient;
use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::membership::Membership;

/// Longest one call to a shard may take; an executor that hangs longer is treated as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 flow-control windows of the shard channels.
const SHARD_STREAM_WINDOW: u32 = 16 << 20;
const SHARD_CONNECTION_WINDOW: u32 = 64 << 20;

#[derive(Debug)]
pub(crate) struct GrpcShardHosts {
    membership: Arc<Membership>,
    /// One channel per executor URL, reused by every call.
    channels: Mutex<HashMap<String, Channel>>,
}

impl GrpcShardHosts {
    pub(crate) fn new(membership: Arc<Membership>) -> Self {
        Self {
            membership,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, node: &str) -> Result<ShardServiceClient<Channel>, RemoteError> {
        let (_, url) = self.membership.node_executor(node).ok_or_else(|| {
            RemoteError::Unreachable(format!("no live executor serves node {node}"))
        })?;
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&url) {
            Some(channel) => channel.clone(),
            None => {
                // Executors restarted on new ports leave channels nobody will use again.
                let live: Vec<String> = self
                    .membership
                    .live_urls()
                    .into_iter()
                    .map(|(_, url)| url)
                    .collect();
                channels.retain(|known, _| live.contains(known));
                let channel = Endpoint::from_shared(url.clone())
                    .map_err(|e| RemoteError::Unreachable(format!("bad executor URL {url}: {e}")))?
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(CALL_TIMEOUT)
                    .tcp_nodelay(true)
                    // Appends are megabytes: HTTP/2's 64 KiB default window would make each
                    // one wait for many window updates.
                    .initial_stream_window_size(Some(SHARD_STREAM_WINDOW))
                    .initial_connection_window_size(Some(SHARD_CONNECTION_WINDOW))
                    .tcp_keepalive(Some(Duration::from_secs(10)))
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .keep_alive_while_idle(true)
                    .connect_lazy();
                channels.insert(url, channel.clone());
                channel
            }
        };
        Ok(ShardServiceClient::new(channel)
            .max_decoding_message_size(MAX_SHARD_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_SHARD_MESSAGE_BYTES))
    }
}

fn shard_ref(node: &str, shard: &ShardRef) -> pb::ShardRef {
    pb::ShardRef {
        table_path: shard.table_path.clone(),
        shard: shard.shard,
        node_id: node.to_owned(),
    }
}

/// What a failed call means for the data: `FailedPrecondition` is the executor saying the shard
/// is not open, and a refused connection never carried the request (nothing was written either
/// way); anything else may have happened after the write.
fn remote_error(node: &str, status: &tonic::Status) -> RemoteError {
    let message = format!("executor node {node}: {}", status.message());
    match status.code() {
        tonic::Code::FailedPrecondition => RemoteError::NotOpen(message),
        tonic::Code::Unavailable if never_connected(status) => RemoteError::Unreachable(message),
        _ => RemoteError::Failed(message),
    }
}

/// Whether the call failed while connecting (hyper-util's connector says "tcp connect error"),
/// before any byte of the request left.
fn never_connected(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut text = status.message().to_owned();
    while let Some(error) = source {
        text.push_str(&error.to_string());
        source = error.source();
    }
    text.contains("tcp connect error") || text.contains("Connection refused")
}

#[async_trait::async_trait]
impl ShardHosts for GrpcShardHosts {
    fn nodes(&self) -> Vec<String> {
        self.membership.shard_nodes()
    }

    fn incarnation(&self, node: &str) -> Option<String> {
        self.membership
            .node_executor(node)
            .map(|(id, _)| id.into_string())
    }

    async fn open(
        &self,
        node: &str,
        shard: &ShardRef,
        schema: &Schema,
        keep_from: u64,
    ) -> Result<Vec<RemoteBatch>, RemoteError> {
        let schema_ipc = ipc::encode_schema(schema)
            .map_err(|e| RemoteError::Failed(format!("encode schema: {e}")))?;
        let mut stream = self
            .client(node)?
            .open_shard(pb::OpenShardRequest {
                shard: Some(shard_ref(node, shard)),
                schema_ipc,
                keep_from,
            })
            .await
            .map_err(|s| remote_error(node, &s))?
            .into_inner();
        let mut batches = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message.map_err(|s| remote_error(node, &s))?;
            let batch = ipc::decode_batch(&message.batch_ipc).map_err(|e| {
                RemoteError::Failed(format!("executor node {node} sent a bad batch: {e}"))
            })?;
            batches.push(RemoteBatch {
                offset: message.offset,
                batch,
                bytes: message.batch_ipc.len(),
            });
        }
        Ok(batches)
    }

    async fn append(
        &self,
        node: &str,
        shard: &ShardRef,
        payload: Vec<u8>,
    ) -> Result<RemoteAck, RemoteError> {
        let response = self
            .client(node)?
            .append(pb::AppendRequest {
                shard: Some(shard_ref(node, shard)),
                batch_ipc: payload,
            })
            .await
            .map_err(|s| remote_error(node, &s))?
            .into_inner();
        Ok(RemoteAck {
            offset: response.offset,
            disk_bytes: response.disk_bytes,
        })
    }

    async fn release(&self, node: &str, shard: &ShardRef, below: u64) -> Result<u64, RemoteError> {
        let response = self
            .client(node)?
            .release(pb::ReleaseRequest {
                shard: Some(shard_ref(node, shard)),
                below,
            })
            .await
            .map_err(|s| remote_error(node, &s))?
            .into_inner();
        Ok(response.disk_bytes)
    }

    async fn drop_table(&self, node: &str, table_path: &str) -> Result<(), RemoteError> {
        self.client(node)?
            .drop_table(pb::DropTableRequest {
                table_path: table_path.to_owned(),
                node_id: node.to_owned(),
            })
            .await
            .map_err(|s| remote_error(node, &s))?;
        Ok(())
    }
}
