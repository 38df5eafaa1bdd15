//! The idempotent producer. `send_all` returns only after Kafka has acknowledged every
//! record of the batch on all in-sync replicas (`acks=all`), or with the first error once
//! every delivery report is in: a caller never acknowledges what Kafka did not persist.
//!
//! A producer made by [`BusProducer::transactional`] also has a `transactional.id`: its
//! [`BusProducer::init_transactions`] fences every older producer with the same id (Kafka
//! aborts its open transaction; its later sends and commits fail), and its records are
//! only visible to `read_committed` readers once [`BusProducer::commit_transaction`]
//! returned. librdkafka's transaction calls block: they run on tokio's blocking pool.

use crate::TxnError;
use crate::{header, BusError, KafkaConfig};
use futures_util::future::join_all;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::{Duration, Instant};

/// One record to send.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    /// `None`: the partitioner picks one from the key (murmur2, as the Java clients do).
    pub partition: Option<i32>,
    pub key: String,
    pub payload: Vec<u8>,
    /// Header name and value.
    pub headers: Vec<(&'static str, String)>,
}

impl OutRecord {
    /// A record carrying the `qt-source` and `qt-seq` headers consumers de-duplicate by.
    pub fn sequenced(topic: String, key: String, payload: Vec<u8>, source: &str, seq: u64) -> Self {
        OutRecord {
            topic,
            partition: None,
            key,
            payload,
            headers: vec![(header::SOURCE, source.to_string()), (header::SEQ, seq.to_string())],
        }
    }
}

/// An idempotent, `acks=all`, compressed producer (optionally transactional).
pub struct BusProducer {
    inner: FutureProducer,
    delivery_timeout: Duration,
    /// Timeout of each transaction call (`request_timeout_ms`).
    txn_timeout: Duration,
    transactional_id: Option<String>,
}

impl std::fmt::Debug for BusProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusProducer").field("delivery_timeout", &self.delivery_timeout).finish_non_exhaustive()
    }
}

impl BusProducer {
    pub fn new(cfg: &KafkaConfig, role: &str) -> Result<Self, BusError> {
        Self::create(cfg, role, None)
    }

    /// A transactional producer: `transactional_id` names the one writer it stands for
    /// (a matching shard). Call [`BusProducer::init_transactions`] before anything else.
    pub fn transactional(cfg: &KafkaConfig, role: &str, transactional_id: &str) -> Result<Self, BusError> {
        Self::create(cfg, role, Some(transactional_id))
    }

    fn create(cfg: &KafkaConfig, role: &str, transactional_id: Option<&str>) -> Result<Self, BusError> {
        cfg.validate()?;
        let mut c = cfg.client_config(role);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            // Idempotence keeps order with up to 5 requests in flight per connection.
            .set("max.in.flight.requests.per.connection", "5")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("message.timeout.ms", cfg.delivery_timeout_ms.to_string())
            .set("request.timeout.ms", cfg.request_timeout_ms.to_string())
            // Murmur2 like the Java clients, so keys land where other clients put them.
            .set("partitioner", "murmur2_random");
        if let Some(id) = transactional_id {
            // The coordinator aborts a transaction left open longer than this (a writer
            // that died mid-batch); librdkafka wants the delivery timeout within it.
            let txn_ms = cfg.delivery_timeout_ms.max(60_000);
            c.set("transactional.id", id).set("transaction.timeout.ms", txn_ms.to_string());
        }
        cfg.apply_extra(&mut c);
        let inner: FutureProducer = c.create()?;
        Ok(BusProducer {
            inner,
            delivery_timeout: Duration::from_millis(u64::from(cfg.delivery_timeout_ms)),
            txn_timeout: cfg.request_timeout(),
            transactional_id: transactional_id.map(str::to_string),
        })
    }

    /// The `transactional.id`, for a transactional producer.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// Registers the `transactional.id` with its coordinator, fencing any older producer
    /// with the same id and aborting its open transaction (waits until that is done).
    pub async fn init_transactions(&self) -> Result<(), BusError> {
        self.txn_call(|p, t| p.init_transactions(t)).await
    }

    pub async fn begin_transaction(&self) -> Result<(), BusError> {
        self.txn_call(|p, _| p.begin_transaction()).await
    }

    /// Commits the open transaction. A [`TxnError::Retriable`] failure leaves its outcome
    /// open: call it again (librdkafka resumes the commit), never abort then.
    pub async fn commit_transaction(&self) -> Result<(), BusError> {
        self.txn_call(|p, t| p.commit_transaction(t)).await
    }

    pub async fn abort_transaction(&self) -> Result<(), BusError> {
        self.txn_call(|p, t| p.abort_transaction(t)).await
    }

    /// Runs a (blocking) transaction call on the blocking pool; a failure carries the
    /// producer's fatal error when it has one (see [`BusError::txn`]).
    async fn txn_call(
        &self,
        call: impl FnOnce(&FutureProducer, Duration) -> KafkaResult<()> + Send + 'static,
    ) -> Result<(), BusError> {
        let (p, t) = (self.inner.clone(), self.txn_timeout);
        let result =
            tokio::task::spawn_blocking(move || call(&p, t)).await.map_err(|e| BusError::Task(e.to_string()))?;
        result.map_err(|e| self.classify(BusError::Kafka(e)))
    }

    /// Turns `e` into [`BusError::Fenced`] or [`BusError::ProducerFatal`] when this
    /// producer has raised a fatal error (it can never send again), else leaves it.
    pub fn classify(&self, e: BusError) -> BusError {
        match self.inner.client().fatal_error() {
            Some((code, reason)) if crate::is_fencing(code) => BusError::Fenced(format!("{code:?}: {reason}")),
            Some((code, reason)) => BusError::ProducerFatal(format!("{code:?}: {reason}")),
            None if matches!(e.txn(), TxnError::Fenced) => BusError::Fenced(e.to_string()),
            None => e,
        }
    }

    /// Sends a batch and waits for every delivery report. Records of one partition keep
    /// their order (idempotent producer). On error, some records may have been written:
    /// retry the whole batch; consumers skip what they have seen. A record that could not
    /// be queued (still refused with the local queue full at the delivery timeout, or
    /// rejected by librdkafka's own checks) is [`BusError::NotQueued`]; a failed delivery
    /// report [`BusError::Kafka`]; [`BusError::send_failure`] tells whether the failing
    /// record may be written.
    pub async fn send_all(&self, records: &[OutRecord]) -> Result<Vec<Delivery>, BusError> {
        let mut pending = Vec::with_capacity(records.len());
        let deadline = Instant::now() + self.delivery_timeout;
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            let mut rec = FutureRecord::to(&r.topic).key(r.key.as_bytes()).payload(&r.payload).headers(headers);
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            loop {
                match self.inner.send_result(rec) {
                    Ok(fut) => {
                        pending.push(fut);
                        break;
                    }
                    // The local queue is full: wait for deliveries to drain it.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        if Instant::now() >= deadline {
                            return Err(BusError::NotQueued(KafkaError::MessageProduction(
                                RDKafkaErrorCode::QueueFull,
                            )));
                        }
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(BusError::NotQueued(e)),
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        let mut first_err = None;
        for report in join_all(pending).await {
            match report {
                Ok(Ok(d)) => out.push(d),
                Ok(Err((e, _msg))) => {
                    first_err.get_or_insert(BusError::Kafka(e));
                }
                Err(_cancelled) => {
                    first_err.get_or_insert(BusError::Cancelled);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Waits until every queued record is delivered (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        Ok(self.inner.flush(timeout)?)
    }

    /// Reachability of the cluster, for readiness probes: a metadata round trip.
    pub fn ping(&self, timeout: Duration) -> Result<usize, BusError> {
        Ok(self.inner.client().fetch_metadata(None, timeout)?.brokers().len())
    }
}
