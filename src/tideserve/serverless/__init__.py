"""Serverless endpoints (ServerlessConfig on a production variant).

    config    ServerlessConfig validated at the edge; the variants-JSON and API shapes
    kind      the VariantKind strategy the control plane consults (control/kinds.py)
    pool      one variant's workers: acquire / release / throttle / keep-alive (pure of I/O)
    workers   workers as instance processes through the fleet provider
    invoke    InvokeEndpoint on a serverless variant: limits and metrics
    billing   GB-seconds of request duration into the cost ledger
    manager   the hooks the controller, router and per-period loop call
"""
