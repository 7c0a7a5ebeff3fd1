"""Asynchronous endpoints (SageMaker's InvokeEndpointAsync, spec §2.3, §3.3, §3.5, §5.2).

    config.py      AsyncInferenceConfig, validated once at the control-plane edge
    endpoints.py   which endpoints are async, and with what config (a table + a cache)
    tables.py      the durable queue and the async-endpoint table
    queue.py       the queue's transactions: enqueue, claim with a lease, finish, re-queue
    objects.py     s3:// locations as files under <state-dir>/s3 (atomic writes), or an
                   external store (objectstore/remote.py) behind the same Objects protocol
    front.py       POST /endpoints/{name}/async-invocations: headers -> a committed row -> 202
    dispatcher.py  queue -> instances (MaxConcurrentInvocationsPerInstance), results -> objects
    backlog.py     the per-endpoint backlog metrics (pure) and their sampler
    notify.py      the InferenceResult event: recorded per topic, POSTed to a mapped URL
    service.py     wiring: what server.py builds and hooks in

Delivery is at least once and the output is idempotent: a request is claimed with a lease,
its result is written atomically under a key fixed at accept time, then the row is marked
done. A crash between the write and the mark re-runs the request and rewrites the same
object, so the output location shows exactly one result.
"""
