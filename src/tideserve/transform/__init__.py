"""Batch transform: SageMaker's CreateTransformJob and friends, on the same fleet provider,
object store and cost ledger as endpoints (spec aws-semantics-hosting-jobs.md §3).

    spec.py      CreateTransformJob's input, validated once into a frozen TransformJobSpec
    tables.py    the jobs and their input objects (durable: a restart resumes a job)
    jobs.py      the store over those tables; Describe/List views
    filters.py   the JSONPath subset of DataProcessing, and JoinSource=Input
    records.py   splitting an object into records and mini-batches (pure, streaming)
    objects.py   listing, reading and atomically publishing s3:// objects (embedded/external)
    output.py    one object's `.out`: assembled in order in a temp file, published once
    instances.py the job's instance processes, started through the fleet provider, billed
    runner.py    one job: its objects dealt over its instances, mini-batches in flight
    batch.py     one mini-batch to an instance: timeout, retries, outputs per record
    inputs.py    the S3Prefix or ManifestFile listing
    datalog.py   the job's data log (<state-dir>/logs/transform/<job>/data-log)
    service.py   the operations, the job supervisor, resume after a restart
    progress.py  the signed GET /tideserve/transform-jobs/<name>/progress route
    cli.py       `tideserve jobs` (a thin client of the API and the progress route)
"""
