//! Arrow Flight ingest: `DoPut` with a descriptor naming a streaming table (path `["events"]`
//! or `["schema", "events"]`, or the name as the command) appends each record batch through
//! the table's one append path. Every batch is acknowledged with a `PutResult` once it is
//! durable; its `app_metadata` is JSON `{"rows": n, "dead_lettered": m}`. Up to
//! [`MAX_INFLIGHT_BATCHES`] batches of one stream are committed concurrently, so decoding
//! overlaps the log's syncs; acknowledgements keep the stream's order. A bad batch ends the
//! stream with an error after the acknowledgements of the batches before it; when a commit
//! fails, later batches of the same stream may have been committed without an acknowledgement
//! (each batch is whole or absent). Served on the coordinator's gRPC (control-plane) port.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use basin_catalog::Catalog;
use futures::stream::{BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::ingest;

/// Batches of one `DoPut` stream being committed at once.
const MAX_INFLIGHT_BATCHES: usize = 8;
/// Largest Flight message accepted.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Decoded batches waiting for their commit across all `DoPut` streams, in KiB; a stream that
/// would exceed it stops reading (gRPC flow control pushes back on the client).
const MAX_INFLIGHT_KIB: u32 = 512 * 1024;

pub(crate) fn service(catalog: Arc<Catalog>) -> FlightServiceServer<IngestFlight> {
    FlightServiceServer::new(IngestFlight {
        catalog,
        inflight: Arc::new(tokio::sync::Semaphore::new(MAX_INFLIGHT_KIB as usize)),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

pub(crate) struct IngestFlight {
    catalog: Arc<Catalog>,
    inflight: Arc<tokio::sync::Semaphore>,
}

fn status(error: &Error) -> Status {
    let message = format!("{} (SQLSTATE {})", error.message(), error.sqlstate());
    match error.sqlstate() {
        "42P01" => Status::not_found(message),
        "42809" => Status::failed_precondition(message),
        "58030" | "XX000" => Status::internal(message),
        "53000" | "57P03" | "08007" => Status::unavailable(message),
        _ => Status::invalid_argument(message),
    }
}

/// The table a descriptor names.
fn table_name(descriptor: &FlightDescriptor) -> Result<String, Status> {
    if !descriptor.path.is_empty() {
        return Ok(descriptor
            .path
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join("."));
    }
    let command = std::str::from_utf8(&descriptor.cmd)
        .map_err(|_| Status::invalid_argument("descriptor command is not UTF-8"))?;
    if command.trim().is_empty() {
        return Err(Status::invalid_argument(
            "the flight descriptor must name a streaming table (path or command)",
        ));
    }
    Ok(command.trim().to_owned())
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn unimplemented<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not served here; Basin's Flight endpoint takes DoPut into streaming tables \
         (query with SQL over the Postgres protocol)"
    )))
}

#[tonic::async_trait]
impl FlightService for IngestFlight {
    type HandshakeStream = Stream_<HandshakeResponse>;
    type ListFlightsStream = Stream_<FlightInfo>;
    type DoGetStream = Stream_<FlightData>;
    type DoPutStream = Stream_<PutResult>;
    type DoExchangeStream = Stream_<FlightData>;
    type DoActionStream = Stream_<arrow_flight::Result>;
    type ListActionsStream = Stream_<ActionType>;

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let mut incoming = request.into_inner();
        let Some(first) = incoming.message().await? else {
            return Err(Status::invalid_argument("empty DoPut stream"));
        };
        let descriptor = first
            .flight_descriptor
            .clone()
            .ok_or_else(|| Status::invalid_argument("the first message needs a descriptor"))?;
        let name = table_name(&descriptor)?;
        let target = ingest::parse_name(&name).map_err(|e| status(&e))?;
        let table = ingest::stream_table(&self.catalog, &target)
            .await
            .map_err(|e| status(&e))?;
        // Every message is checked before arrow-flight decodes it: arrow-ipc panics on some
        // malformed batches (docs/reliability.md, "Fuzzing").
        let mut check = basin_catalog::ipc::MessageCheck::default();
        let data: BoxStream<'static, Result<FlightData, FlightError>> =
            futures::stream::once(async move { Ok(first) })
                .chain(incoming.map_err(FlightError::from))
                .map(move |message| {
                    let message = message?;
                    check
                        .check_flight_data(&message.data_header, &message.data_body)
                        .map_err(FlightError::Arrow)?;
                    Ok(message)
                })
                .boxed();
        let mut decoder = FlightDataDecoder::new(data);
        let catalog = Arc::clone(&self.catalog);
        let inflight = Arc::clone(&self.inflight);
        let acks = async_stream(move |sender| async move {
            let mut pending = FuturesOrdered::new();
            let mut first_row = 1u64;
            loop {
                if pending.len() >= MAX_INFLIGHT_BATCHES {
                    if let Some(done) = pending.next().await
                        && !send_ack(&sender, done).await
                    {
                        return;
                    }
                    continue;
                }
                let message = tokio::select! {
                    biased;
                    Some(done) = pending.next(), if !pending.is_empty() => {
                        if !send_ack(&sender, done).await {
                            return;
                        }
                        continue;
                    }
                    message = decoder.next() => message,
                };
                let Some(message) = message else { break };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        let status = Status::invalid_argument(format!("bad Flight data: {error}"));
                        fail_after(&sender, &mut pending, status).await;
                        return;
                    }
                };
                match message.payload {
                    DecodedPayload::Schema(schema) => {
                        if let Err(error) = ingest::check_arrow_schema(table.as_ref(), &schema) {
                            fail_after(&sender, &mut pending, status(&error)).await;
                            return;
                        }
                    }
                    DecodedPayload::RecordBatch(batch) => {
                        let rows = batch.num_rows() as u64;
                        let decoded = match ingest::from_arrow(table.as_ref(), batch, first_row) {
                            Ok(decoded) => decoded,
                            Err(error) => {
                                fail_after(&sender, &mut pending, status(&error)).await;
                                return;
                            }
                        };
                        first_row += rows;
                        let kib = u32::try_from(decoded.batch.get_array_memory_size() / 1024)
                            .unwrap_or(MAX_INFLIGHT_KIB)
                            .clamp(1, MAX_INFLIGHT_KIB);
                        // Wait for room, committing (and acknowledging) this stream's own
                        // batches meanwhile: they may be what holds it.
                        let permit = loop {
                            tokio::select! {
                                permit = Arc::clone(&inflight).acquire_many_owned(kib) => break permit,
                                Some(done) = pending.next(), if !pending.is_empty() => {
                                    if !send_ack(&sender, done).await {
                                        return;
                                    }
                                }
                            }
                        };
                        let Ok(permit) = permit else { return };
                        let (catalog, table) = (Arc::clone(&catalog), Arc::clone(&table));
                        pending.push_back(async move {
                            let delivered =
                                ingest::deliver(&catalog, &table, decoded, "flight").await;
                            drop(permit);
                            delivered
                        });
                    }
                    DecodedPayload::None => {}
                }
            }
            while let Some(done) = pending.next().await {
                if !send_ack(&sender, done).await {
                    return;
                }
            }
        });
        Ok(Response::new(acks))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("Handshake")
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented("ListFlights")
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unimplemented("GetFlightInfo")
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let name = table_name(request.get_ref())?;
        let target = ingest::parse_name(&name).map_err(|e| status(&e))?;
        let table = ingest::stream_table(&self.catalog, &target)
            .await
            .map_err(|e| status(&e))?;
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let result = SchemaResult::try_from(arrow_flight::SchemaAsIpc::new(
            table.schema().as_ref(),
            &options,
        ))
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        _request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        unimplemented("DoGet")
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented("DoExchange")
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented("DoAction")
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unimplemented("ListActions")
    }
}

type AckSender = tokio::sync::mpsc::Sender<Result<PutResult, Status>>;

/// Ends the stream with `status`, after acknowledging the batches already committing, so the
/// client learns exactly which batches are durable.
async fn fail_after<F>(sender: &AckSender, pending: &mut FuturesOrdered<F>, status: Status)
where
    F: std::future::Future<Output = Result<ingest::Delivered, Error>>,
{
    while let Some(done) = pending.next().await {
        if !send_ack(sender, done).await {
            return;
        }
    }
    let _ = sender.send(Err(status)).await;
}

/// Sends the acknowledgement (or error) of one batch; false when the stream must end.
async fn send_ack(sender: &AckSender, done: Result<ingest::Delivered, Error>) -> bool {
    match done {
        Ok(delivered) => {
            let metadata = serde_json::to_vec(&delivered).unwrap_or_default();
            sender
                .send(Ok(PutResult {
                    app_metadata: metadata.into(),
                }))
                .await
                .is_ok()
        }
        Err(error) => {
            let _ = sender.send(Err(status(&error))).await;
            false
        }
    }
}

/// A response stream fed by `task`, which runs as its own tokio task.
fn async_stream<F, Fut>(task: F) -> Stream_<PutResult>
where
    F: FnOnce(AckSender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(MAX_INFLIGHT_BATCHES * 2);
    tokio::spawn(task(sender));
    Box::pin(tokio_stream_from(receiver))
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
