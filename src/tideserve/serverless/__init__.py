"""Serverless endpoints (ServerlessConfig on a production variant).

    config    ServerlessConfig validated at the edge; the variants-JSON and API shapes
    kind      the VariantKind strategy the control plane consults (control/kinds.py)
    admission the decisions, pure (time passed in): warm / cold start / throttled, release,
              keep-alive expiry, reaching ProvisionedConcurrency; the simulator calls it too
    pool      one variant's workers: carries admission's decisions out with a launcher
    workers   workers as instance processes through the fleet provider
    invoke    InvokeEndpoint on a serverless variant: limits and metrics
    billing   GB-seconds of request duration into the cost ledger
    manager   the hooks the controller, router and per-period loop call
"""
