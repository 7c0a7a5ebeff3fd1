"""Application Auto Scaling and CloudWatch alarms on live endpoints: the AWS APIs, their
storage and the per-period driver that runs the pure engine in `tideserve.scaling` (whose
world, tick, alarm_tick and ports are the per-tick step shared with the simulator).

    tables, codec, store   persistence (one row per target, policy, action, activity, alarm)
    validate, validate_metric, validate_schedule, validate_step, alarm_validate, fields
                           wire requests -> the engine's typed values, AWS's error messages
    describe               the engine's values -> AWS's Describe* shapes
    driver                 the edge: reads metrics and capacity, applies, persists
    aas_api, alarms_api    the operation handlers
    cli                    `tideserve scaling ...`
"""
