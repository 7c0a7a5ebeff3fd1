"""Application Auto Scaling and CloudWatch alarms on live endpoints: the AWS APIs, their
storage and the per-period driver that runs the pure engine in `tideserve.scaling` (whose
world, tick, alarm_tick and ports are the per-tick step shared with the simulator).

    tables, codec, store   persistence (one row per target, policy, action, activity, alarm)
    storage                what the handlers and the driver need from a store; the in-memory
                           one the simulator builds its world with (no database)
    validate, validate_metric, validate_schedule, validate_step, alarm_validate, fields
                           wire requests -> the engine's typed values, AWS's error messages
    describe               the engine's values -> AWS's Describe* shapes
    driver                 the edge: runs scaling.drive.drive_once on wall time between a
                           store load and save, with the metric store and the CapacityPort
    aas_api, alarms_api    the operation handlers
    cli                    `tideserve scaling ...`
    latency_policies, latency_driver
                           tideserve extension (beyond AWS): latency-target policies on live
                           variants (PutLatencyTargetPolicy, ...), run by the driver each tick
"""
