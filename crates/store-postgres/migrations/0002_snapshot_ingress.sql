-- The ingress watermarks of a matching shard's snapshot: per `orders` stream
-- (`source@topic/partition`), the highest request sequence number whose command the
-- snapshot's state contains, as a JSON object {"stream": seq, …}. Recovery seeds the
-- shard's redelivery de-duplication from them and then from the journal replayed after
-- the snapshot, so a request the snapshot covers is recognised even when its `orders`
-- offset was never committed (the journal before the snapshot is not replayed).
-- NULL: a snapshot saved by an older version (or by a store that has no ingress).
ALTER TABLE snapshots ADD COLUMN ingress JSONB;
