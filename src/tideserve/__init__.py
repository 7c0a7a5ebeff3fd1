"""tideserve: self-hosted ML model hosting with SageMaker's API and Application Auto Scaling's
semantics.

Module map: what each package or top-level module owns, and the only packages it may import
(tests/test_layering.py holds the code to this map and refuses any import cycle; a new
dependency across packages needs its line changed here first).

    clock        wall and fake clocks
                 -> -
    errors       AWS-shaped errors every layer raises
                 -> -
    settings     the server's settings (period, time scale, region, dirs)
                 -> -
    state_files  private state dir and 0600 files
                 -> -
    db           SQLAlchemy engine and metadata (tables register on it)
                 -> state_files
    client       boto3 clients for a running server
                 -> -
    scaling      pure policy engine: alarms, target tracking, step, cron
                 -> errors
    metrics      aggregation, CloudWatch store and queries, Prometheus
                 -> clock db errors
    serving      router, instance model server, runtimes, archives, codecs
                 -> errors metrics
    api          SigV4, AWS wire protocols, the ASGI app
                 -> clock errors serving settings
    objectstore  embedded S3 store and API, fsspec adapter
                 -> api clock errors settings
    cost         price catalog, ledger, billing, reports, Cost Explorer
                 -> client clock db errors metrics
    fleet        instance providers (local processes), readiness, restart backoff
                 -> cost serving
    autoscaling  AAS and alarm APIs, their storage, the per-period driver
                 -> client clock db errors metrics scaling settings
    asyncinf     async inference: queue, dispatcher, backlog, notifications
                 -> api clock db errors metrics serving settings
    control      SageMaker control plane, controller, variant-kind registry
                 -> asyncinf autoscaling clock cost db errors fleet objectstore serving state_files
    serverless   the serverless variant kind: pools, workers, billing
                 -> autoscaling clock control cost errors fleet metrics scaling serving
    sim          the policy-rehearsal simulator
                 -> autoscaling client clock cost db errors metrics scaling serverless settings
    schema       creates every package's tables (wiring)
                 -> asyncinf autoscaling control cost db metrics
    server       wiring for `tideserve up`
                 -> *
    cli          the command line
                 -> *
"""

__version__ = "0.1.0"
