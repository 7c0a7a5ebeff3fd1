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
    scaling      the pure engine: alarms, target tracking, step, cron, predictive scaling
                 (forecast, predictive), and the per-tick step (world, tick, alarm_tick,
                 ports) both the live driver and the simulator run; tideserve's latency target
                 (M/M/c) and burst mode
                 -> errors
    forecasting  load forecasting models (statsmodels Holt-Winters) behind scaling's port
                 -> scaling
    metrics      the metric catalogue, aggregation, CloudWatch store and queries, Prometheus
                 -> clock db errors
    tracing      OpenTelemetry spans and propagation, the OTLP pipeline, recent traces, the
                 OTLP receiver, `tideserve traces`
                 -> client errors
    serving      router, instance model server, runtimes, archives, codecs
                 -> errors metrics tracing
    api          SigV4, AWS wire protocols, the ASGI app
                 -> clock errors serving settings tracing
    objectstore  embedded S3 store and API, fsspec adapter
                 -> api clock errors settings
    cost         price catalog, ledger, billing, reports, Cost Explorer (usage, forecasts,
                 rightsizing, Savings Plans), `tideserve rightsize`
                 -> client clock db errors metrics
    fleet        instance providers (local processes), readiness, restart backoff
                 -> cost serving
    autoscaling  AAS and alarm APIs (wire validation, AWS-shaped views), their storage, the
                 live driver and its forecasts
                 -> client clock db errors forecasting metrics scaling settings
    asyncinf     async inference: queue, dispatcher, backlog, notifications
                 -> api clock db errors metrics serving settings tracing
    control      SageMaker control plane, controller (pure plans, executors), variant kinds
                 -> asyncinf clock cost db errors fleet objectstore scaling serving state_files
    access       IAM: users, access keys, inline policies, the iam API, policy evaluation and
                 the authorisation gate every request passes after SigV4; `tideserve keys`
                 -> client clock control db errors
    audit        the CloudTrail audit trail: event records, their store, LookupEvents
                 -> api clock db errors
    serverless   the serverless variant kind: pools, workers, billing
                 -> clock control cost errors fleet metrics scaling serving tracing
    transform    batch transform jobs: inputs, mini-batches, filters, instances, progress
                 -> api asyncinf client clock control cost db errors fleet logs objectstore
                    serving settings tracing
    training     SageMaker training jobs: specs, the toolkit's environment, runs on on-demand
                 or spot instances, checkpoints, their storage
                 -> client clock control cost db errors fleet logs objectstore serving settings
    recommender  SageMaker Inference Recommender: load tests of candidate instance types on
                 this machine, ranked recommendations, scaling advice, `tideserve recommend`
                 -> client clock control cost errors fleet objectstore serving settings sim
                    transform
    sim          the policy-rehearsal simulator
                 -> asyncinf autoscaling client clock cost errors forecasting metrics scaling
                    serverless settings
    tuning       policy families, their search on a trace's training part (optuna) and report
                 on the held-out part, the calls that install the choice; `tideserve tune`
                 -> cost errors sim
    logs         CloudWatch Logs: log groups, ingestion of instance output, the logs API,
                 filter patterns, Logs Insights
                 -> clock db errors
    stacks       CloudFormation: templates, intrinsics, resource providers over our own
                 services, the stack engine, the cloudformation API, `tideserve stack`
                 -> api client clock db errors
    budgets      AWS Budgets: budgets, notifications and subscribers, budget actions and what
                 they do to endpoints and jobs, their periodic evaluation; `tideserve budgets`
                 -> api client clock cost db errors
    schema       creates every package's tables (wiring)
                 -> access asyncinf audit autoscaling budgets control cost db logs metrics
                    stacks training transform
    cluster      more than one server on one database: Alembic migrations, the leader lock,
                 a follower's routes, `tideserve db upgrade`
                 -> control db schema serving
    trust        wiring for keys, permissions and the audit trail
                 -> *
    budgets_wiring  wiring for budgets: its API, its actions' targets, the CreateEndpoint guard
                 -> *
    server       wiring for `tideserve up`
                 -> *
    cli          the command line
                 -> *
"""

__version__ = "0.1.0"
